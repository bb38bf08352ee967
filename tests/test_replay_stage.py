"""Issue 24, item 5: one frame loop (static/stage.js) for the live page and the replay.

Before, static/replay.js copied dashboard.js's frame loop and left out what it did not copy:
an exported replay did not zoom to the lesson's key moments when its run had been shown, as
the live page does. Now both are the same Stage: the same run, opened live and from its
replay.html, ends up showing the same window, and the **Key moment** button returns there.
Pictures of both (en and zh, 1280x800 and a 390x844 phone) go to test-output/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import PageErrors, open_offline, screenshot
from conftest import Server

SHOWN = ("document.querySelector('[data-testid=run-status]')?.dataset.status === 'succeeded'"
         " && window.procscope.panels.length === 1 && window.procscope.panels[0].resultReady"
         " && window.procscope.panels[0].keyWindow")
WINDOW = "[procscope.view.mode, procscope.view.t0, procscope.view.t1]"
KEY = "[procscope.panels[0].keyWindow.t0, procscope.panels[0].keyWindow.t1]"


@pytest.fixture(scope="module")
def rush_run(server: Server) -> dict[str, Any]:
    """A finished ticket rush with the lock on: it has key moments (the lock passing)."""
    with server.client() as client:
        response = client.post("/api/runs", json={"experiment": "ticket_rush", "params": {
            "n": 6, "lock": True, "time_scale": 0.1}})
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        with client.stream("GET", f"/api/runs/{run_id}/events.ndjson") as stream:
            for _ in stream.iter_lines():
                pass
        run: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "succeeded", run
    return run


def _key_window_shown(page: Any) -> tuple[float, float]:
    """Wait for the run's end to be shown; the window it shows, which must be its key moment."""
    page.wait_for_function(SHOWN, timeout=30_000)
    # View.focus shows [t0, t1] as asked (a window narrower than its least span grows).
    page.wait_for_function(f"(() => {{ const [m, a, b] = {WINDOW}; const [k0, k1] = {KEY};"
                           " return m === 'free' && Math.abs(a - k0) < 1e-9 &&"
                           " b >= k1 - 1e-9; })()", timeout=10_000)
    t0, t1 = page.evaluate(KEY)
    return t0, t1


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_replay_zooms_to_the_key_moment_as_the_live_page_does(
        browser: Any, server: Server, rush_run: dict[str, Any], tmp_path: Path,
        lang: str) -> None:
    with httpx.Client(base_url=server.url, headers={"Accept-Language": lang}) as http:
        replay = http.get(f"/api/runs/{rush_run['id']}/replay.html")
    assert replay.status_code == 200
    path = tmp_path / "replay.html"
    path.write_bytes(replay.content)
    for size, tag in (({"width": 1280, "height": 800}, ""), ({"width": 390, "height": 844},
                                                             "-phone")):
        context = browser.new_context(viewport=size, locale="zh-CN" if lang == "zh" else "en-US",
                                      extra_http_headers={"Accept-Language": lang})
        try:
            live = context.new_page()
            errors = PageErrors()
            errors.watch(live)
            live.goto(f"{server.url}/runs/{rush_run['id']}")
            live_window = _key_window_shown(live)
            screenshot(live, f"stage-live-{lang}{tag}")

            offline = context.new_page()
            errors.watch(offline)
            requested = open_offline(offline, path)
            assert _key_window_shown(offline) == pytest.approx(live_window)
            assert offline.get_by_test_id("key-moment").is_visible()
            screenshot(offline, f"stage-replay-{lang}{tag}")
            assert offline.evaluate("document.documentElement.lang") == lang
            if not tag:
                # Zoomed out to the whole run, the button returns to the key moment.
                offline.locator("[data-zoom=fit]").click()
                offline.wait_for_function("procscope.view.mode === 'fit'")
                offline.get_by_test_id("key-moment").click()
                _key_window_shown(offline)
            assert requested == [path.as_uri()], requested
            assert errors.messages == []
        finally:
            context.close()
