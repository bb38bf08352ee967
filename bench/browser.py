"""What the watching browser costs: frame time on a 100,000-event run, and Chromium's CPU
while it watches a live `gil` run (and what that does to the lesson's speedup).

Runs in the bench process: a real server and Debian's Chromium driven by the playwright
package (never `playwright install`).

- Frame time: a `flood` run of 10 processes x 10,000 events (~100k events with the
  lifecycle and the kernel's), drawn live, then replayed zoomed out. The page measures
  each frame's draw in `procscope.frameMs`; the rAF interval says whether it keeps 60 Hz.
- Watching cost: `gil` processes (2 workers) on this machine's cores with nobody
  watching, and with a 1280x720 page drawing it live: as the page draws now (at most
  15 redraws a second while live, `?live_hz=`), and as it drew before (every animation
  frame, `?draw=every-frame`), in alternating rounds. Chromium's CPU is the utime+stime
  of every Chromium process under this one (browser, renderer, GPU/compositor), from
  /proc, over the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import httpx

from bench.server import BenchServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
RAF_INTERVALS = """() => new Promise(done => {
  const ts = [];
  const tick = (t) => { ts.push(t); ts.length < 121 ? requestAnimationFrame(tick) : done(ts); };
  requestAnimationFrame(tick);
})"""


def _stats(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"p50": samples[0] if samples else 0.0, "p95": samples[0] if samples else 0.0}
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": qs[49], "p95": qs[94], "max": max(samples), "frames": len(samples)}


def chromium_cpu_seconds() -> dict[int, float]:
    """utime+stime of each Chromium process descending from this one, in seconds, by pid."""
    stats: dict[int, tuple[int, str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                text = f.read()
        except OSError:
            continue  # gone meanwhile
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        stats[int(name)] = (int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / tick)
    mine = {os.getpid()}
    grew = True
    while grew:  # descendants, whatever order /proc listed them in
        grew = False
        for pid, (ppid, _, _) in stats.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return {pid: cpu for pid, (_, comm, cpu) in stats.items()
            if pid in mine and comm.startswith("chrom")}


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds Chromium used between two readings: of the processes alive at the end
    (one that exited meanwhile, such as a closed page's renderer, is not counted)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


MOUNT = """async (id) => {
  const run = await (await fetch(`/api/runs/${id}`)).json();
  procscope.mount([run]);
}"""

WATCHERS = {  # label -> the page's query string (None: no page at all)
    "nobody watching": None,
    "page, every frame (before)": "draw=every-frame",
    "page, on change, 15 Hz live (now)": "",
}


def _watch_once(browser: Any, server: BenchServer, query: str | None,
                work: float) -> dict[str, float]:
    """One live gil processes run, watched (or not) by a page; Chromium's CPU over it."""
    context = page = None
    if query is not None:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.goto(f"{server.url}/?{query}")
        page.wait_for_function("window.procscope !== undefined")
    try:
        cpu0, t0 = chromium_cpu_seconds(), time.monotonic()
        run = httpx.post(server.url + "/api/runs", json={"experiment": "gil", "params": {
            "mode": "processes", "workers": 2, "work": work}}).json()
        if page is not None:
            page.evaluate(MOUNT, run["id"])
            page.wait_for_selector("[data-testid=run-status][data-status=succeeded]",
                                   timeout=120_000)
            frames = page.evaluate("procscope.frames")
        else:
            frames = 0
            while httpx.get(f"{server.url}/api/runs/{run['id']}").json()["status"] == "running":
                time.sleep(0.05)
        cpu1, t1 = chromium_cpu_seconds(), time.monotonic()
        result = httpx.get(f"{server.url}/api/runs/{run['id']}").json()["result"]
    finally:
        if context is not None:
            context.close()
    return {"browser_cores": cpu_between(cpu0, cpu1) / (t1 - t0), "fps": frames / (t1 - t0),
            "speedup": float(result["speedup"]), "elapsed": float(result["elapsed"])}


def watch_cost(rounds: int = 3, work: float = 2.0) -> dict[str, dict[str, float]]:
    """Chromium's CPU and gil's speedup per way of watching, medians of `rounds` rounds."""
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[dict[str, float]]] = {label: [] for label in WATCHERS}
    with BenchServer() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for _ in range(rounds):  # alternating: the machine's other load hits all alike
                for label, query in WATCHERS.items():
                    samples[label].append(_watch_once(browser, server, query, work))
        finally:
            browser.close()
    return {label: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
            for label, runs in samples.items()}


def watch_report(cost: dict[str, dict[str, float]]) -> str:
    lines = ["## Watching a live gil run (processes, 2 workers): Chromium's CPU, the lesson's "
             "speedup (medians)",
             f"{'':<36} {'browser cores':>13} {'frames/s':>9} {'speedup':>8} {'elapsed s':>10}"]
    for label, row in cost.items():
        lines.append(f"{label:<36} {row['browser_cores']:>13.2f} {row['fps']:>9.1f} "
                     f"{row['speedup']:>8.2f} {row['elapsed']:>10.2f}")
    return "\n".join(lines)


def run(quick: bool = False) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    per_process = 2_000 if quick else 10_000
    out: dict[str, Any] = {}
    with BenchServer() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            run_id = httpx.post(server.url + "/api/runs", json={
                "experiment": "flood",
                "params": {"processes": 10, "events": per_process, "rate": 2000}}).json()["id"]
            page.goto(f"{server.url}/runs/{run_id}")
            page.wait_for_function("procscope.panels.length === 1 && "
                                   "procscope.panels[0].model.count > 1000")
            page.evaluate("procscope.frameMs.length = 0")
            page.wait_for_selector("[data-testid=run-status][data-status=succeeded]",
                                   timeout=180_000)
            live = page.evaluate("procscope.frameMs.slice()")
            page.wait_for_function("procscope.panels[0].pendingCount === 0")
            out["events"] = page.evaluate("procscope.panels[0].model.count")
            out["live_draw_ms"] = _stats(live)
            page.keyboard.press("0")  # fit: the whole run, zoomed out
            page.evaluate("procscope.frameMs.length = 0")
            page.select_option(".speed select", "4")
            page.click(".playbar .play")  # replay at 4x over the zoomed-out view
            gaps = page.evaluate(RAF_INTERVALS)
            out["zoomed_out_replay_draw_ms"] = _stats(page.evaluate("procscope.frameMs.slice()"))
            out["raf_interval_ms"] = _stats([b - a for a, b in zip(gaps, gaps[1:], strict=False)])
        finally:
            browser.close()
    out["watch_cost"] = watch_cost(rounds=1 if quick else 3, work=1.0 if quick else 2.0)
    return out


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__)
    parser.add_argument("--watch-only", action="store_true",
                        help="only the cost of watching a live gil run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=float, default=2.0, help="gil's CPU-seconds per worker")
    args = parser.parse_args()
    if args.watch_only:
        print(watch_report(watch_cost(args.rounds, args.work)))
    else:
        results = run()
        print(json.dumps({k: v for k, v in results.items() if k != "watch_cost"}, indent=1))
        print(watch_report(results["watch_cost"]))
