"""The dashboard in a real Chromium against a real server: start lessons from the page and
watch them live, open a run's shareable page after the end, replay it, compare two runs,
presenter mode at 1280x720, the keyboard, and a 100,000-event run drawn within its budget.

Screenshots of each main view go to test-output/ (look at them: the picture must explain
the lesson without words).

Nothing here waits for a fixed time: on a loaded machine any fixed time is a race. A test
waits for the condition its assertion needs (`wait_final`: every run ended, its result
shown and its last events drawn) or for frames the page has drawn (`procscope.frames`).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser import PageErrors, screenshot
from conftest import Server, read_events
from kernel_trace import KernelTrace, overlap_fraction
from machine_load import LoadMeter, load
from plain_burn import tracefs, worker_spans
from playwright.sync_api import Browser, Page

__all__ = ["load", "tracefs"]  # the fixtures, imported for pytest

# The final statuses (app/pipe/ledger.py FINAL); `interrupted`: live when the server died.
FINAL = ("succeeded", "failed", "cancelled", "timed_out", "interrupted")

# Pixels that are clearly a process's colour (the Okabe-Ito hues are saturated; the page's
# greys, grid and text are not): proof that lanes were drawn, not just the empty axes.
COLOURED_PIXELS = """(canvas) => {
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
  }
  return n;
}"""


class Tab:
    """One page of the dashboard, with everything it complained about."""

    def __init__(self, browser: Browser, base: str, width: int = 1440, height: int = 900):
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page: Page = self.context.new_page()
        self.base = base
        self.errors = PageErrors()
        self.errors.watch(self.page)

    def open(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Browser, server: Server) -> Iterator[Tab]:
    t = Tab(browser, server.url)
    yield t
    t.close()


def choose(page: Page, experiment: str, **params: Any) -> None:
    """Pick a lesson in the select (htmx loads its form) and set params in the form."""
    select = page.locator("[data-testid=experiment-select]")
    if select.input_value() != experiment:  # (selecting it again would reload the form)
        select.select_option(experiment)
    page.wait_for_selector(f"#params-form[data-experiment={experiment}]")
    page.locator("details.common").evaluate("d => { d.open = true; }")
    for name, value in params.items():
        field = page.locator(f"#param-{name}")
        if isinstance(value, bool):
            field.set_checked(value)
        elif isinstance(value, list):
            field.fill(", ".join(str(v) for v in value))
        elif field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))


def wait_final(page: Page, count: int = 1, timeout: float = 90) -> list[str]:
    """Wait until `count` runs are over and the page shows it all: each status final, each
    result panel filled (from the run's JSON), each timeline drawn with its last events."""
    page.wait_for_function(
        """([n, final]) => {
          const s = [...document.querySelectorAll('[data-testid=run-status]')];
          return s.length === n && s.every(e => final.includes(e.dataset.status)) &&
            procscope.panels.length === n && procscope.panels.every(p =>
              p.resultReady && p.pendingCount === 0 &&
              p.timeline.drawnVersion === p.model.version);
        }""", arg=[count, list(FINAL)], timeout=timeout * 1000)
    return page.locator("[data-testid=run-status]").all_inner_texts()


def frame_after(page: Page, seen: int) -> None:
    """Wait until the page has drawn a frame after the `seen`-th (procscope.frames). It
    draws only when something changed or a clock runs: read `seen` before the change."""
    page.wait_for_function("seen => procscope.frames > seen", arg=seen)


def coloured(page: Page, testid: str, nth: int = 0) -> int:
    return int(page.locator(f"[data-testid={testid}]").nth(nth).evaluate(COLOURED_PIXELS))


def console_lines(page: Page, nth: int = 0) -> list[str]:
    return page.locator("[data-testid=console]").nth(nth).locator(".line").all_inner_texts()


# ---- the form -------------------------------------------------------------------------


def test_index_lists_lessons_and_builds_each_form_from_its_schema(
        tab: Tab, client: httpx.Client) -> None:
    page = tab.open("/")
    listed = [e["id"] for e in client.get("/api/experiments").json()]
    options = page.locator("[data-testid=experiment-select] option")
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == listed

    choose(page, "ticket_rush")
    n = page.locator("#param-n")
    assert (n.get_attribute("type"), n.get_attribute("min"), n.get_attribute("max"),
            n.input_value()) == ("number", "1", "500", "100")
    assert page.locator("#param-lock").get_attribute("type") == "checkbox"
    assert page.locator("#param-lock").is_checked()
    assert page.locator("#param-start_method option").all_inner_texts() == [
        "fork", "forkserver", "spawn"]
    assert "lock.acquire()" in page.locator(".code").inner_text()
    assert "Lock" in page.locator(".lesson").inner_text()
    assert page.locator("[data-testid=start-compare]").inner_text().strip() == \
        "Run both: lock on vs lock off"
    assert page.url.endswith("/?experiment=ticket_rush")

    choose(page, "join")
    durations = page.locator("#param-durations")
    assert (durations.get_attribute("type"), durations.input_value()) == ("text", "2, 3, 5")

    # A bad value is refused next to the form, before any request.
    durations.fill("2, x")
    page.click("[data-testid=start-run]")
    assert "comma-separated numbers" in page.locator(".form-error").inner_text()
    assert tab.errors.messages == []


# ---- a live run, then its shareable page ------------------------------------------------


@pytest.fixture(scope="module")
def ticket_run(browser: Browser, server: Server) -> Iterator[dict[str, Any]]:
    """ticket_rush (100 buyers, lock on) started from the page and watched to the end."""
    t = Tab(browser, server.url)
    page = t.open("/")
    choose(page, "ticket_rush", time_scale=0.1)
    page.click("[data-testid=start-run]")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    page.wait_for_function("document.querySelectorAll('[data-testid=console] .line').length > 5")
    screenshot(page, "ticket_rush-live")
    statuses = wait_final(page)
    screenshot(page, "ticket_rush-done")
    info = {
        "id": page.url.rsplit("/", 1)[1],
        "statuses": statuses,
        "console": console_lines(page),
        "cores": coloured(page, "timeline-cores"),
        "procs": coloured(page, "timeline-procs"),
        "result": page.locator("[data-testid=result]").inner_text(),
        "raw": page.locator("[data-testid=result] .raw pre").text_content(),
        "stats": page.locator(".run-stats").inner_text(),
        "errors": list(t.errors.messages),
        "tracks": page.evaluate("procscope.panels[0].model.tracks()"),
    }
    t.close()
    yield info


def test_ticket_rush_from_the_page_runs_live_to_the_end(ticket_run: dict[str, Any],
                                                        client: httpx.Client) -> None:
    assert ticket_run["statuses"] == ["succeeded"]
    buyers = [line for line in ticket_run["console"] if "buyer-" in line]
    assert len(buyers) >= 100  # each buyer prints the stock it saw; one prints its sale
    assert ticket_run["cores"] > 200 and ticket_run["procs"] > 2000
    assert "Sold 1 ticket, stock was 1" in ticket_run["result"]
    assert "none oversold" in ticket_run["result"]
    assert '"buyers"' in ticket_run["raw"]  # the raw result JSON is there too
    run = client.get(f"/api/runs/{ticket_run['id']}").json()
    assert run["status"] == "succeeded" and run["result"]["sold"] == 1
    assert f"{run['events']:,} events" in ticket_run["stats"]
    assert "delay" in ticket_run["stats"] and "0 dropped" in ticket_run["stats"]
    # The tracks ticket_rush declares in its spec (the page knows no lesson by name).
    assert ticket_run["tracks"] == ["lock", "sold"]
    assert ticket_run["errors"] == []


def test_a_finished_runs_page_shows_the_same_and_replays(ticket_run: dict[str, Any],
                                                         tab: Tab) -> None:
    page = tab.open(f"/runs/{ticket_run['id']}")
    assert wait_final(page) == ["succeeded"]
    page.wait_for_function(f"document.querySelectorAll('[data-testid=console] .line').length"
                           f" === {len(ticket_run['console'])}")
    assert console_lines(page) == ticket_run["console"]
    assert page.locator("[data-testid=result]").inner_text() == ticket_run["result"]
    assert coloured(page, "timeline-cores") > 200 and coloured(page, "timeline-procs") > 2000
    assert "replayed from the log" in page.locator(".run-stats").inner_text()
    screenshot(page, "ticket_rush-shared-link")

    # Replay at 4x: the clock runs from 0 to the end, the console refills as it goes.
    page.select_option(".speed select", "4")
    page.click(".playbar .play")
    # The first frame drawn while replaying: its clock and console, read in that frame.
    during = page.wait_for_function("""() => {
      if (procscope.clock.mode !== "playing") return null;
      const [shown, end] = document.querySelector(".playbar .clock").textContent
        .split(" / ").map(parseFloat);
      if (!(shown < end)) return null;  // not yet drawn since play was pressed
      return {shown, end, lines: document.querySelectorAll("[data-testid=console] .line").length};
    }""", polling="raf").json_value()
    shown, end = during["shown"], during["end"]
    assert 0 <= shown < end
    assert during["lines"] < len(ticket_run["console"])
    page.wait_for_function("document.querySelector('.playbar .play').textContent.includes('Play')",
                           timeout=30_000)  # paused at the end
    assert page.locator(".playbar .clock").inner_text().startswith(f"{end:.3f} s")
    # Scrub to the middle: the picture and the console are those of that instant.
    seen = page.locator(".playbar .scrub").evaluate("""(e, t) => {
      const seen = procscope.frames;
      e.value = t;
      e.dispatchEvent(new Event("input"));
      return seen;
    }""", end / 2)
    frame_after(page, seen)
    assert 0 < len(console_lines(page)) < len(ticket_run["console"])
    screenshot(page, "ticket_rush-replay-middle")
    assert tab.errors.messages == []


def test_hover_tells_what_a_mark_is(ticket_run: dict[str, Any], tab: Tab) -> None:
    page = tab.open(f"/runs/{ticket_run['id']}")
    wait_final(page)
    canvas = page.locator("[data-testid=timeline-procs]")
    box = canvas.bounding_box()
    assert box is not None
    # Sweep along the first buyer's lanes until the tooltip names a process and a kind.
    seen = ""
    for y in range(int(box["height"] * 0.3), int(box["height"] * 0.6), 3):
        for x in range(150, int(box["width"]) - 20, 12):
            page.mouse.move(box["x"] + x, box["y"] + y)
            tip = page.locator(".tooltip")
            if tip.is_visible() and "pid" in tip.inner_text():
                seen = tip.inner_text()
                break
        if seen:
            break
    assert re.search(r"buyer-\d+", seen) and "ppid" in seen
    screenshot(page, "ticket_rush-hover")


# ---- compare, presenter, keyboard ------------------------------------------------------


def test_compare_runs_lock_on_and_off_on_one_time_scale(tab: Tab) -> None:
    page = tab.open("/?experiment=ticket_rush")
    choose(page, "ticket_rush", n=30, time_scale=0.5)
    page.click("[data-testid=start-compare]")
    page.wait_for_url(re.compile(r"/runs/\d+\?compare=\d+$"))
    assert wait_final(page, 2) == ["succeeded", "succeeded"]
    results = page.locator("[data-testid=result]").all_inner_texts()
    assert "none oversold" in results[0]
    assert re.search(r"Sold \d+ tickets?, stock was 1", results[1])
    tags = page.locator(".run-params").all_inner_texts()
    assert tags == ["lock on", "lock off"]
    # Lock off has no lock of its own, but compared runs draw the same tracks: its empty
    # Lock track is the lesson.
    assert page.evaluate("procscope.panels.map(p => p.model.tracks())") == [
        ["lock", "sold"], ["sold"]]
    assert page.evaluate("procscope.panels.map(p => p.timeline.geom.tracks)") == [
        ["lock", "sold"], ["lock", "sold"]]
    for i in range(2):
        assert coloured(page, "timeline-procs", i) > 500
    # One time scale: both canvases map the same instant to the same column.
    widths = page.locator("[data-testid=timeline-procs]").evaluate_all(
        "cs => cs.map(c => c.clientWidth)")
    assert widths[0] == widths[1]
    screenshot(page, "compare-lock-on-off")
    assert tab.errors.messages == []


def test_presenter_mode_fills_a_1280x720_screen(browser: Browser, server: Server) -> None:
    t = Tab(browser, server.url, 1280, 720)
    try:
        page = t.open("/?experiment=join")
        choose(page, "join", durations=[2, 3, 5], time_scale=0.2)
        page.click("#presenter-toggle")
        assert page.locator(".sidebar").is_hidden()
        page.click("[data-proxy=start-run]")  # the Run button of the presenter's top bar
        assert wait_final(page) == ["succeeded"]
        procs = page.locator("[data-testid=timeline-procs]").bounding_box()
        assert procs is not None and procs["width"] > 1200
        assert procs["y"] + procs["height"] <= 720
        size = page.locator(".run-name").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 18
        assert "not the sum" in page.locator(".run-outcome").inner_text()
        screenshot(page, "presenter-join-1280x720")
        assert t.errors.messages == []
    finally:
        t.close()


def test_keyboard_reaches_every_control(tab: Tab, ticket_run: dict[str, Any]) -> None:
    page = tab.open(f"/runs/{ticket_run['id']}")
    wait_final(page)
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("""() => {
          const e = document.activeElement;
          return e.dataset.testid || e.id || e.className || e.tagName;
        }"""))
    for control in ("experiment-select", "start-run", "start-compare", "presenter-toggle",
                    "play", "scrub", "canvases"):
        assert control in reached, (control, sorted(reached))
    # On the timeline, keys zoom and pan.
    page.focus(".canvases")
    before = page.evaluate("[procscope.view.t0, procscope.view.t1]")
    page.keyboard.press("+")
    page.keyboard.press("ArrowLeft")
    after = page.evaluate("[procscope.view.t0, procscope.view.t1]")
    assert after[1] - after[0] < before[1] - before[0]
    page.keyboard.press("0")
    assert page.evaluate("procscope.view.mode") == "fit"
    assert tab.errors.messages == []


# ---- failures and scale (a server with the self-test lessons) -------------------------


def test_a_failing_lesson_shows_failed_and_its_traceback(browser: Browser,
                                                          selftest_server: Server) -> None:
    t = Tab(browser, selftest_server.url)
    try:
        page = t.open("/?experiment=fails")
        page.click("[data-testid=start-run]")
        assert wait_final(page) == ["failed"]
        result = page.locator("[data-testid=result]")
        result.locator(".traceback").wait_for()
        assert "ZeroDivisionError" in result.inner_text()
        # Folded (issue 23): the outcome says it in words; the frames start at the lesson's
        # (app.live.runner's own is left out).
        traceback = result.locator("[data-testid=traceback]")
        assert traceback.evaluate("d => d.open") is False
        frames = traceback.locator("pre").text_content() or ""
        assert "runner.py" not in frames
        assert "fails.py" in frames
        assert result.locator(".outcome").inner_text() == \
            "The run failed: ZeroDivisionError: division by zero."
        assert any("about to divide by zero" in line for line in console_lines(page))
        assert t.errors.messages == []
    finally:
        t.close()


# A replayed frame of the whole 100k-event run must draw within one frame at 60 Hz. It
# takes a few ms (README: p50 3.4 ms): the timeline draws per visible pixel column, not per
# event; drawing each event would take several times the budget. The median, not the
# tail: the machine is shared, and a descheduled frame says nothing about the renderer.
# Held against the load over the replay (machine_load: more runnable tasks than cores
# stretch a frame's wall time); bench/browser.py measures the draw's p95 beside its goal.
REPLAY_DRAW_BUDGET_MS = 16.7


def test_a_100k_event_run_replays_within_a_frame(browser: Browser, selftest_server: Server,
                                                 capsys: pytest.CaptureFixture[str],
                                                 load: LoadMeter) -> None:
    """10 processes x 10,000 events, drawn live at ~20,000 events/s, then replayed whole.

    Live frame costs (shared with 10 emitting processes on two cores) are only printed:
    bench/browser.py measures them."""
    t = Tab(browser, selftest_server.url)
    try:
        page = t.open("/?experiment=flood")
        choose(page, "flood", processes=10, events=10_000, rate=2000)
        page.click("[data-testid=start-run]")
        page.wait_for_function(
            "procscope.panels.length === 1 && procscope.panels[0].model.count > 1000")
        page.evaluate("procscope.frameMs.length = 0")
        assert wait_final(page, timeout=120) == ["succeeded"]
        live = page.evaluate("procscope.frameMs.slice()")  # the last 240 frames, live
        count = page.evaluate("procscope.panels[0].model.count")
        assert count > 100_000
        screenshot(page, "flood-100k")
        page.select_option(".speed select", "4")
        replayed = time.monotonic()
        page.click(".playbar .play")  # replay the whole run at 4x: ~1.3 s of frames
        page.evaluate("procscope.frameMs.length = 0")
        page.wait_for_function("procscope.clock.mode === 'paused'", timeout=60_000)  # at the end
        window = load.since(replayed)
        frames = page.evaluate("procscope.frameMs.slice()")
        assert len(frames) >= 10, frames
        replay = frames[len(frames) // 2:]  # the second half: most of the run on screen
        with capsys.disabled():
            print(f"\n100k-event run ({count} events): draw per frame live median "
                  f"{statistics.median(live):.1f} ms (max {max(live):.1f}), replay median "
                  f"{statistics.median(replay):.1f} ms (max {max(replay):.1f}, "
                  f"{len(frames)} frames)")
        # per frame: the crowding, and the share of the window the hypervisor stole
        budget = REPLAY_DRAW_BUDGET_MS * window.crowding * (
            1 + window.steal / max(window.seconds, 1e-3))
        assert statistics.median(replay) <= budget, (budget, replay)
        assert t.errors.messages == []
    finally:
        t.close()


def test_the_stream_is_read_once_and_not_replayed_after_run_end(tab: Tab,
                                                                ticket_run: dict[str, Any]) -> None:
    page = tab.open(f"/runs/{ticket_run['id']}")
    wait_final(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/events" in r.url else None)
    count = page.evaluate("procscope.panels[0].model.count")
    # The stream stopped for good at run.end: "ended", not "retrying" (which would reconnect
    # and replay the log). Then a second of frames (60 at 60 Hz): nothing more arrives.
    page.wait_for_function("procscope.panels[0].streamState === 'ended'")
    page.evaluate("""() => new Promise(done => {
      let n = 0;
      const tick = () => (++n < 60 ? requestAnimationFrame(tick) : done());
      requestAnimationFrame(tick);
    })""")
    assert page.evaluate("procscope.panels[0].streamState") == "ended"
    assert page.evaluate("procscope.panels[0].model.count") == count
    assert page.evaluate("procscope.panels[0].model.missing") == 0
    assert requests == []


# ---- every lesson, a student's link to a live run, pausing a live run --------------------


def _lessons() -> list[str]:
    from procscope.experiments import EXPERIMENTS

    return [e for e in EXPERIMENTS if e not in ("fails", "flood")]


@pytest.mark.parametrize("experiment", _lessons())
def test_every_lesson_runs_from_the_page_and_is_told_in_words(experiment: str, tab: Tab,
                                                             client: httpx.Client) -> None:
    page = tab.open(f"/?experiment={experiment}")
    choose(page, experiment, time_scale=0.2)
    page.click("[data-testid=start-run]")
    assert wait_final(page, timeout=120) == ["succeeded"]
    assert coloured(page, "timeline-procs") > 50
    outcome = page.locator("[data-testid=result] .outcome").inner_text()
    assert outcome and not outcome.startswith("The run "), outcome  # a sentence, not a status
    # ... the one the lesson's spec builds on the server, in the run's JSON.
    run = client.get(f"/api/runs/{page.url.rsplit('/', 1)[1]}").json()
    assert outcome == run["outcome"]["text"]
    page.locator("#stage").screenshot(path=str(screenshot_path(f"lesson-{experiment}")))
    assert tab.errors.messages == []


def screenshot_path(name: str) -> Any:
    from browser import OUTPUT

    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT / f"{name}.png"


def test_a_student_opens_a_live_run_and_can_pause_it(tab: Tab, client: httpx.Client) -> None:
    run = client.post("/api/runs", json={"experiment": "join", "params": {
        "durations": [1, 2, 3], "time_scale": 0.8}}).json()
    page = tab.open(run["links"]["page"])
    page.wait_for_selector("[data-testid=run-status][data-status=running]")
    page.wait_for_function("procscope.panels[0].model.count > 3")
    page.click(".playbar .play")  # pause the picture; the stream keeps arriving underneath
    assert page.evaluate("procscope.clock.mode") == "paused"
    # The play bar is redrawn on the next animation frame: read it once that has been.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    frozen = page.locator(".playbar .clock").inner_text().split(" /")[0]
    count = page.evaluate("procscope.panels[0].model.count")
    page.wait_for_function(f"procscope.panels[0].model.count > {count}")
    assert page.locator(".playbar .clock").inner_text().split(" /")[0] == frozen
    page.click(".playbar .live")
    assert page.evaluate("procscope.clock.mode") == "live"
    assert wait_final(page) == ["succeeded"]
    assert "delay" in page.locator(".run-stats").inner_text()
    assert tab.errors.messages == []


def test_a_newcomer_sees_the_race_in_under_a_minute(tab: Tab, load: LoadMeter) -> None:
    """Issue 5's "done when": open /, pick ticket_rush, Run (defaults), then "compare with
    lock off": the race and its consequence are on screen, in under a minute (on free
    cores: held against the machine's load meanwhile)."""
    started = time.monotonic()
    page = tab.open("/")
    choose(page, "ticket_rush")
    page.click("[data-testid=start-run]")
    assert wait_final(page) == ["succeeded"]
    page.click("[data-testid=compare-with]")
    page.wait_for_url(re.compile(r"/runs/\d+\?compare=\d+$"))
    assert wait_final(page, 2) == ["succeeded", "succeeded"]
    elapsed = load.since(started)
    outcomes = page.locator(".run-outcome").all_inner_texts()
    assert "none oversold" in outcomes[0]
    assert re.search(r"— \d+ oversold", outcomes[1]), outcomes[1]
    screenshot(page, "newcomer-lock-on-vs-off")
    elapsed.assert_within(60, "the newcomer's two runs")
    assert tab.errors.messages == []


# ---- core lanes from cpu.run (issue 11) ---------------------------------------------------

# Per pixel column of the core lanes in a time window: which cores show a process's colour
# near the bottom of their lane (where every stretch's bar starts), and that colour. What a
# student sees, read off the canvas.
CORE_COLUMNS = """([t0, t1]) => {
  const p = procscope.panels[0];
  const tl = p.timeline, g = tl.geom, th = procscope.theme, v = procscope.view;
  const c = tl.cores, dpr = g.dpr;
  const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const cores = p.model.cores.length;
  const x0 = Math.ceil(tl.x(Math.max(t0, v.t0), v)), x1 = Math.floor(tl.x(Math.min(t1, v.t1), v));
  const cols = [];
  for (let x = x0; x < x1; x++) {
    const row = [];
    for (let k = 0; k < cores; k++) {
      const y = th.axisH + k * th.coreH + (th.coreH - 2) - 2;
      const i = (Math.round(y * dpr) * c.width + Math.round(x * dpr)) * 4;
      const [r, gg, b] = [data[i], data[i + 1], data[i + 2]];
      row.push(Math.max(r, gg, b) - Math.min(r, gg, b) > 60 ? `${r},${gg},${b}` : null);
    }
    cols.push(row);
  }
  return cols;
}"""

# The workers' common stretch of work: from the last task.start to the first task.end.
WORK_WINDOW = """() => {
  const tasks = procscope.panels[0].model.lanes.flatMap(
    l => l.spans.filter(s => s.kind === "task"));
  return [Math.max(...tasks.map(s => s.t0)), Math.min(...tasks.map(s => s.t1))];
}"""


def zoom_to(page: Page, t0: float, t1: float) -> None:
    seen = page.evaluate("""([t0, t1]) => {
      const seen = procscope.frames;
      Object.assign(procscope.view, {t0, t1, mode: "free"});
      procscope.redraw();
      return seen;
    }""", [t0, t1])
    frame_after(page, seen)


def run_gil(tab_: Tab, mode: str, work: float = 1.0) -> Page:
    page = tab_.open("/?experiment=gil")
    choose(page, "gil", mode=mode, work=work)
    page.click("[data-testid=start-run]")
    assert wait_final(page, timeout=120) == ["succeeded"]
    page.mouse.move(5, 5)  # no tooltip in the screenshots
    return page


def test_gil_threads_take_turns_on_one_core_at_a_time(browser: Browser, server: Server,
                                                      load: LoadMeter) -> None:
    """Issue 11: the core lanes come from cpu.run; zoomed in to 50 ms the GIL's hand-offs are
    alternating colours on one core at a time, and the threads' lanes have their names."""
    t = Tab(browser, server.url, 1280, 720)
    try:
        ran = time.monotonic()
        page = run_gil(t, "threads")
        crowding = load.since(ran).crowding
        share = page.evaluate("procscope.panels[0].run.result.speedup")  # CPU s / wall s
        names = page.evaluate("procscope.panels[0].model.lanes.map(l => l.name)")
        assert "main · thread-1" in names and "main · thread-2" in names, names
        busy = page.evaluate("procscope.panels[0].timeline.inUseAvg")
        t0, t1 = page.evaluate(WORK_WINDOW)
        assert t1 - t0 > 0.3
        screenshot(page, "gil-threads")
        mid = (t0 + t1) / 2
        zoom_to(page, mid - 0.025, mid + 0.025)
        cols = page.evaluate(CORE_COLUMNS, [mid - 0.025, mid + 0.025])
        screenshot(page, "gil-threads-50ms")
        assert len(cols) > 500
        both = sum(1 for row in cols if row[0] and row[1]) / len(cols)
        some = sum(1 for row in cols if row[0] or row[1]) / len(cols)
        colours = [next(c for c in row if c) for row in cols if row[0] or row[1]]
        changes = sum(1 for a, b in zip(colours, colours[1:], strict=False) if a != b)
        # One core at a time (the kernel: 0.5-6 % both), and the GIL passing between the two
        # threads every ~5 ms: several changes of colour in 50 ms. On a quiet machine (no
        # more tasks runnable than cores) one core is busy nearly always, and "mostly busy"
        # (0.35) is asserted. On a crowded one the threads had only the share of a core
        # their own CPU clocks say (the result's speedup), and the lanes are held to that
        # share of 0.35: the page must draw what the threads really got.
        busy_at_least = 0.35 if crowding <= 1 else 0.35 * min(1.0, share)
        assert both < 0.15 and some > busy_at_least, (both, some, crowding, share)
        assert changes >= 3 and len(set(colours)) >= 2, (changes, set(colours))
        assert busy is not None and busy < 1.25, busy  # over the whole run, ~1 core busy
        assert t.errors.messages == []
    finally:
        t.close()


@pytest.mark.usefixtures("tracefs")
def test_gil_processes_keep_both_cores_busy(browser: Browser, server: Server) -> None:
    t = Tab(browser, server.url, 1280, 720)
    try:
        page = t.open("/?experiment=gil")
        choose(page, "gil", mode="processes", work=1.0)
        with KernelTrace() as kt:  # the kernel's record of who ran where, the reference
            page.click("[data-testid=start-run]")
            assert wait_final(page, timeout=120) == ["succeeded"]
        page.mouse.move(5, 5)  # no tooltip in the screenshot
        screenshot(page, "gil-processes")
        t0, t1 = page.evaluate(WORK_WINDOW)
        assert t1 - t0 > 0.3
        zoom_to(page, t0, t1)
        cols = page.evaluate(CORE_COLUMNS, [t0, t1])
        both = sum(1 for row in cols if row[0] and row[1]) / len(cols)
        busy = page.evaluate("procscope.panels[0].timeline.inUseAvg")
        run_id = page.evaluate("procscope.panels[0].run.id")
        with server.client() as client:
            events = read_events(client, run_id)
            main_pid = client.get(f"/api/runs/{run_id}").json()["pid"]
        run_t0 = events[0]["data"]["t0_monotonic_ns"]
        a_ns, b_ns = (run_t0 + round(t * 1e9) for t in (t0, t1))
        first_worker, second_worker = worker_spans(kt, events)
        spans = kt.on_cpu_spans(kt.tree(main_pid))
        kernel_busy = sum(max(0, min(s.t1_ns, b_ns) - max(s.t0_ns, a_ns))
                          for s in spans) / (b_ns - a_ns)
        kernel_both = overlap_fraction(first_worker, second_worker, a_ns, b_ns)
        # What the page draws over the workers' common stretch is what the kernel had the
        # run's processes do there: on free cores ~2 cores busy and both cores at once
        # 88-99 % of it, on a crowded machine less, and the page must say that too.
        print(f"cores busy: drawn {busy:.2f}, kernel {kernel_busy:.2f}; both at once: "
              f"drawn {both * 100:.1f} %, kernel {kernel_both * 100:.1f} %")
        assert abs(busy - kernel_busy) <= 0.05 + 0.1 * kernel_busy, (busy, kernel_busy)
        assert both >= kernel_both - 0.15, (both, kernel_both)
        assert t.errors.messages == []
    finally:
        t.close()


def test_run_both_on_gil_runs_the_sides_one_after_the_other(
        browser: Browser, server: Server, client: httpx.Client) -> None:
    """Issue 11 item 4: started together, both sides got half the machine each and
    processes came out slower than threads. The second side starts after the first ends."""
    t = Tab(browser, server.url, 1280, 720)
    try:
        page = t.open("/?experiment=gil")
        choose(page, "gil", work=0.5)
        assert "one after the other" in (page.locator(
            "[data-testid=start-compare]").get_attribute("title") or "")
        page.click("[data-testid=start-compare]")
        page.wait_for_selector(".run-timeline.pending")  # the second waits for the first
        page.wait_for_url(re.compile(r"/runs/\d+\?compare=\d+$"), timeout=120_000)
        assert wait_final(page, 2, timeout=120) == ["succeeded", "succeeded"]
        first, second = re.findall(r"/runs/(\d+)\?compare=(\d+)$", page.url)[0]
        a = client.get(f"/api/runs/{first}").json()
        b = client.get(f"/api/runs/{second}").json()
        assert (a["params"]["mode"], b["params"]["mode"]) == ("threads", "processes")
        assert b["started_at"] > a["ended_at"], (a["ended_at"], b["started_at"])
        assert "one after the other, so each had the whole machine" in page.locator(
            "[data-testid=compare-note]").inner_text()
        # (Not asserted: processes' speedup > threads'. With the whole machine it is, ~1.9
        # vs ~1.0; but other load on a shared CI machine can take a core from either side.)
        page.mouse.move(5, 5)
        screenshot(page, "gil-run-both")
        # The shared link says the same.
        page = t.open(f"/runs/{first}?compare={second}")
        wait_final(page, 2)
        assert "one after the other" in page.locator("[data-testid=compare-note]").inner_text()
        assert t.errors.messages == []
    finally:
        t.close()


def test_ticket_rush_at_1280x720(browser: Browser, server: Server,
                                ticket_run: dict[str, Any]) -> None:
    t = Tab(browser, server.url, 1280, 720)
    try:
        page = t.open(f"/runs/{ticket_run['id']}")
        wait_final(page)
        note = page.locator("[data-testid=cpu-lanes-note]")
        assert note.get_attribute("data-mode") in ("exact", "sampled")
        assert note.inner_text().lower().startswith(("core lanes: exact", "core lanes sampled"))
        # No buyer is drawn re-parented to 0 (a dying process, state X, is no orphan).
        assert page.evaluate("procscope.panels[0].model.lanes.flatMap(l => l.reparents)"
                             ".filter(r => r.to === 0).length") == 0
        page.mouse.move(5, 5)
        screenshot(page, "ticket_rush-1280x720")
        assert t.errors.messages == []
    finally:
        t.close()


@pytest.fixture(scope="module")
def sampled_server() -> Iterator[Server]:
    srv = Server("--cpu-lanes", "sampled")
    yield srv
    srv.stop()


def test_sampled_core_lanes_say_so_beside_them(browser: Browser, sampled_server: Server) -> None:
    t = Tab(browser, sampled_server.url, 1280, 720)
    try:
        page = run_gil(t, "threads", work=0.5)
        note = page.locator("[data-testid=cpu-lanes-note]")
        assert note.is_visible() and note.get_attribute("data-mode") == "sampled"
        text = note.inner_text()
        assert re.search(r"Core lanes sampled \(~[\d.–]+ ms resolution\)", text), text
        assert "For exact lanes:" in text
        # Sampled stretches are drawn at their share: the threads still read as one core.
        assert page.evaluate("procscope.panels[0].timeline.inUseAvg") < 1.3
        screenshot(page, "gil-threads-sampled")
        assert t.errors.messages == []
    finally:
        t.close()
