"""What the watching page costs the lesson it shows (issue 27, items 3 and 4): Chromium's
CPU while a `gil` run is drawn live, the lesson's speed-up with the page open beside the
same burn without procscope, and the frame time of a 200,000-event run drawn live and
replayed from its exported replay.html.

Runs in the bench process: a real server of each tree (bench.trees: with --before REV the
earlier commit's page too) and Debian's Chromium driven by the playwright package (never
`playwright install`), headless, 1280x720.

- gil with its page open: the `gil` lesson, processes, 2 workers, work=1.5 (CPU seconds
  each), posted to the server while a page of that tree is open on it and mounted at once
  (the page draws it live, as a teacher's would). Its figure is the run's `speedup` (CPU
  seconds over wall seconds). The baseline is the same main() in a fresh Python without
  procscope (bench.overhead.plain), no page open, measured in the same round: plain, then
  each tree's page, round after round, so that the machine's other load hits every column.
- Chromium's CPU: utime+stime, from /proc/<pid>/stat, of every Chromium process under
  this one (browser, renderer, GPU and utility processes) over the run, in cores.
- Frames: a `flood` of 10 processes x 10,000 events at 2,000 a second each (~200,000
  events with the lifecycle, its ticks' and the kernel's; --quick 10 x 2,500) drawn live, then its
  replay.html opened from disk, fitted and played through at 4x. A frame's time is the page's own
  `procscope.frameMs`: from the animation frame's start to the end of its rendering (a
  message posted in the frame callback arrives after style, layout and paint), for every
  frame the page drew.
- The machine's load: every core's busy time from /proc/stat over each round, less
  Chromium's and the lesson's own (its `cpu_s`): the other load, in cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import overhead
from bench.server import BenchServer
from bench.trees import Tree

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


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

GIL = {"mode": "processes", "workers": 2, "work": 1.5}
GOALS = {
    "browser_cores": 0.15,  # Chromium's CPU during the gil run, at most
    "speedup_ratio": 0.95,  # gil's speed-up with the page open over plain's, at least
    "frame_p95_ms": 16.0,  # a frame of a 200k-event run, live and replayed, at most
}


def busy_cores_s() -> float:
    """Busy CPU seconds of the whole machine so far (every core: /proc/stat's first line,
    less idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _p95(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def _gil_watched(browser: Any, server: BenchServer) -> dict[str, float]:
    """One gil run posted while a page is open on `server` and drawing it live."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("window.procscope !== undefined")
        busy0, cpu0, t0 = busy_cores_s(), chromium_cpu_seconds(), time.monotonic()
        run = httpx.post(server.url + "/api/runs",
                         json={"experiment": "gil", "params": GIL}).json()
        page.evaluate(MOUNT, run["id"])
        page.wait_for_selector("[data-testid=run-status][data-status=succeeded]",
                               timeout=120_000)
        cpu1, t1, busy1 = chromium_cpu_seconds(), time.monotonic(), busy_cores_s()
        frames = page.evaluate("procscope.frames")
    finally:
        context.close()
    result = httpx.get(f"{server.url}/api/runs/{run['id']}").json()["result"]
    browser_s = cpu_between(cpu0, cpu1)
    wall = t1 - t0
    return {"speedup": float(result["speedup"]), "browser_cores": browser_s / wall,
            "fps": frames / wall, "elapsed": float(result["elapsed"]),
            "other_cores": (busy1 - busy0 - browser_s - float(result["cpu_seconds"])) / wall}


def _gil_plain(root: Path) -> dict[str, float]:
    busy0, t0 = busy_cores_s(), time.monotonic()
    result = overhead.plain("gil", GIL, root)
    wall = time.monotonic() - t0
    return {"speedup": float(result["speedup"]), "elapsed": float(result["elapsed"]),
            "other_cores": (busy_cores_s() - busy0 - float(result["cpu_seconds"])) / wall}


def _frames(browser: Any, server: BenchServer, per_process: int, out_dir: Path
            ) -> dict[str, float]:
    """A flood drawn live, then its replay.html played zoomed out: frame p95s (ms)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("window.procscope !== undefined")
        run = httpx.post(server.url + "/api/runs", json={"experiment": "flood", "params": {
            "processes": 10, "events": per_process, "rate": 2000}}).json()
        page.evaluate(MOUNT, run["id"])
        page.wait_for_function("procscope.panels.length === 1 && "
                               "procscope.panels[0].model.count > 1000")
        page.evaluate("procscope.frameMs.length = 0")
        page.wait_for_selector("[data-testid=run-status][data-status=succeeded]",
                               timeout=300_000)
        live = page.evaluate("procscope.frameMs.slice()")
        events = page.evaluate("procscope.panels[0].model.count")
        html = httpx.get(f"{server.url}/api/runs/{run['id']}/replay.html", timeout=120)
        path = out_dir / f"replay-{run['id']}.html"
        path.write_bytes(html.content)
        page.goto(path.as_uri())
        page.wait_for_function("window.procscope && procscope.panels[0].resultReady && "
                               "procscope.panels[0].pendingCount === 0", timeout=120_000)
        page.keyboard.press("0")  # fit: the whole run, zoomed out
        page.select_option(".speed select", "4")
        page.evaluate("procscope.frameMs.length = 0")
        page.click(".playbar .play")
        page.wait_for_function("procscope.clock.mode !== 'playing'", timeout=120_000)
        replay = page.evaluate("procscope.frameMs.slice()")
    finally:
        context.close()
    return {"events": events, "live_p95": _p95(live), "live_p50": statistics.median(live),
            "live_max": max(live), "live_frames": len(live), "replay_p95": _p95(replay),
            "replay_p50": statistics.median(replay), "replay_max": max(replay)}


def run(trees: list[Tree], quick: bool = False, log: Any = print) -> dict[str, Any]:
    """Every page figure for each tree, its baseline in the same rounds."""
    from playwright.sync_api import sync_playwright

    rounds = 2 if quick else 3
    out: dict[str, Any] = {"trees": [t.name for t in trees], "gil": {"plain": []},
                           "frames": {}, "load": os.getloadavg()}
    servers = {t.name: BenchServer(root=t.root) for t in trees}
    for s in servers.values():
        s.__enter__()
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                for i in range(rounds):
                    log(f"page: gil round {i + 1} of {rounds}")
                    out["gil"]["plain"].append(_gil_plain(trees[-1].root))
                    for t in trees:
                        out["gil"].setdefault(t.name, []).append(
                            _gil_watched(browser, servers[t.name]))
                for t in trees:
                    log(f"page: frames of a flood ({t.name})")
                    out["frames"][t.name] = _frames(browser, servers[t.name],
                                                    2_500 if quick else 10_000, Path(tmp))
            finally:
                browser.close()
    finally:
        for s in servers.values():
            s.__exit__(None, None, None)
    return out


def _med(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _spread(xs: list[float]) -> str:
    return f" ({min(xs):.2f}-{max(xs):.2f})" if len(xs) > 1 else ""


def rows(results: dict[str, Any]) -> list[tuple[str, dict[str, str], str, str, str]]:
    """(figure, {tree: cell}, baseline, goal, met?) rows for issue 17's table; met is judged
    on the last tree ("after")."""
    names = results["trees"]
    gil = results["gil"]
    plain = gil["plain"]
    base = _med(plain, "speedup")
    other = _med(plain, "other_cores")
    out = []
    ratios = {n: [w["speedup"] / p["speedup"] for w, p in zip(gil[n], plain, strict=True)]
              for n in names}
    out.append(("`gil` processes speed-up, its page open and drawing live (work=1.5)",
                {n: f"{_med(gil[n], 'speedup'):.2f}, {_med(gil[n], 'speedup') / base:.2f} of "
                    f"plain{_spread(ratios[n])}" for n in names},
                f"plain {base:.2f}{_spread([p['speedup'] for p in plain])}; other load "
                f"{other:.2f} cores",
                f">= {GOALS['speedup_ratio']:.2f} of plain",
                "met" if _med(gil[names[-1]], "speedup") / base >= GOALS["speedup_ratio"]
                else "MISSED"))
    cores = {n: [w["browser_cores"] for w in gil[n]] for n in names}
    out.append(("Chromium's CPU while it draws that run (renderer, GPU, browser)",
                {n: f"{statistics.median(cores[n]):.2f} cores{_spread(cores[n])}, "
                    f"{_med(gil[n], 'fps'):.0f} frames/s" for n in names},
                "nobody watching: 0", f"<= {GOALS['browser_cores']:.2f} core",
                "met" if statistics.median(cores[names[-1]]) <= GOALS["browser_cores"]
                else "MISSED"))
    frames = results["frames"]
    last = frames[names[-1]]
    for key, label in (("live", "drawn live"), ("replay", "its replay.html, fitted, 4x")):
        out.append((f"frame of a {last['events']:,}-event run, {label}",
                    {n: f"p95 {frames[n][key + '_p95']:.1f} ms (p50 "
                        f"{frames[n][key + '_p50']:.1f}, max {frames[n][key + '_max']:.0f})"
                     for n in names},
                    "one display frame: 16.7 ms", f"p95 <= {GOALS['frame_p95_ms']:.0f} ms",
                    "met" if last[key + "_p95"] <= GOALS["frame_p95_ms"] else "MISSED"))
    return out


def table(results: dict[str, Any]) -> str:
    names = results["trees"]
    lines = ["| figure | " + " | ".join(names) + " | baseline | goal | met? |",
             "|" + "---|" * (len(names) + 4)]
    for figure, cells, baseline, goal, met in rows(results):
        lines.append("| " + " | ".join([figure, *(cells[n] for n in names), baseline, goal,
                                        met]) + " |")
    load = results["load"]
    lines.append(f"\n(load average at the start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
                 f"other load during the page's gil runs "
                 + ", ".join(f"{n} {_med(results['gil'][n], 'other_cores'):.2f}"
                             for n in names) + " cores)")
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    from bench.trees import trees as _trees

    parser = argparse.ArgumentParser(prog="python -m bench.page_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--before", metavar="REV")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    with _trees(args.before) as compared:
        results = run(compared, quick=args.quick)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))

