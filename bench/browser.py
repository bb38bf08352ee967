"""Frame time in headless Chromium while a 100,000-event run is drawn, live and zoomed out.

Runs in the bench process: a real server, a `flood` run of 10 processes x 10,000 events
(~100k events with the lifecycle and the sampler's), and Debian's Chromium driven by the
playwright package (never `playwright install`). The page measures each frame's draw in
`procscope.frameMs`; the rAF interval says whether the page keeps up with 60 Hz.
"""

from __future__ import annotations

import statistics
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
            out["raf_interval_ms"] = _stats([b - a for a, b in zip(gaps, gaps[1:])])
        finally:
            browser.close()
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
