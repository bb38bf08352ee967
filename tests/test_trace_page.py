"""A traced program's page draws its primitives as the lessons' are drawn (issue 26).

Runs in the pytest process: a real uvicorn (conftest.Server) found through a private
runtime directory, a real `python -m procscope trace` of a real program, and Debian's
Chromium (tests/browser.py) on the run's page. What is asserted is what a student sees:
the tracks' names and types (the canvas draws them from the page's model, read here), the
labels of the bars on the lanes, the marks, the sidebar's facts about the program.

- tests/data/trace/every_primitive.py: every primitive the contract names (Lock, RLock,
  Semaphore, Event, Condition, Barrier, Queue, JoinableQueue, SimpleQueue, Pipe, Pool,
  ProcessPoolExecutor, a Manager's dict, Value), each in the picture.
- The tutorial's programs (tests/data/tutorial/): their Lock, their JoinableQueue, their Pool.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Server

# How a program is traced, as tests/test_trace.py does it (conftest's trace_server finds it).
from test_trace import own_lines, run_of
from test_trace import traced as traced_run

DATA = Path(__file__).resolve().parent / "data"

# What the page's model holds of a run, as the canvas draws it: the object tracks (name,
# type, what the label at its right says is computed from the same records), every object
# used, and each lane's bars and marks.
PICTURE = """() => {
  const m = procscope.panels[0].model;
  const o = m.objects;
  return {
    tracks: o.tracks().map((x) => [o.nameOf(x), o.typeOf(x)]),
    holds: o.tracks().map((x) => x.holds.map((s) => [s.lane.name, s.t0, s.t1])),
    used: [...o.byId.values()].filter((x) => x.used).map((x) => [o.nameOf(x), x.type]),
    lanes: m.rows().map((l) => l.name),
    spans: Object.fromEntries(m.rows().map((l) => [l.name, l.spans.map((s) => s.label)])),
    marks: Object.fromEntries(m.rows().map((l) =>
      [l.name, [...new Set(l.marks.map((e) => e.kind))]])),
  };
}"""


def traced(name: str, folder: Path, runtime_dir: Path, server: Server) -> str:
    """`procscope trace NAME` in `folder`, to its end; the run's id (its events all read)."""
    done = traced_run([name], folder, runtime_dir)
    assert done.returncode == 0, done.stderr
    _, run_id = own_lines(done.stderr)
    assert run_id is not None, done.stderr
    run_of(server, run_id)  # to run.end: the run is over
    return run_id


def open_run(browser: Any, server: Server, run_id: str, name: str, *, lang: str = "en",
             width: int = 1280, height: int = 800) -> tuple[Any, Any, dict[str, Any]]:
    """The run's page, ended and drawn; its context (to close), the page and its picture."""
    from browser import PageErrors, screenshot

    phone = width < 500
    ctx = browser.new_context(viewport={"width": width, "height": height},
                              locale="zh-CN" if lang == "zh" else "en-US",
                              is_mobile=phone, has_touch=phone)
    if lang == "zh":
        ctx.add_cookies([{"name": "procscope_lang", "value": "zh", "url": server.url}])
    page = ctx.new_page()
    errors = PageErrors()
    errors.watch(page)
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_function("procscope.panels.length === 1 && procscope.panels[0].resultReady")
    page.wait_for_function("procscope.panels[0].timeline.drawnVersion === "
                           "procscope.panels[0].model.version")
    screenshot(page, f"trace-{name}-{lang}-{width}x{height}")
    assert errors.messages == []
    return ctx, page, page.evaluate(PICTURE)


def test_every_primitive_is_in_the_picture(trace_server: Server, runtime_dir: Path,
                                           browser: Any) -> None:
    run_id = traced("every_primitive.py", DATA / "trace", runtime_dir, trace_server)
    ctx, page, seen = open_run(browser, trace_server, run_id, "every_primitive")
    try:
        # The sidebar: the program, not a lesson.
        assert page.locator("[data-testid=program] h1").inner_text() == "every_primitive.py"
        assert page.locator("[data-testid=program-exitcode]").inner_text() == "0"
        assert "['every_primitive.py']" in page.locator(".sidebar").inner_text()
        # A track for each lock, queue and Event it used, named as the program names them.
        tracks = dict(seen["tracks"])
        for name, kind in [("lock", "Lock"), ("rlock", "RLock"), ("sem", "Semaphore"),
                           ("ready", "Event"), ("jobs", "JoinableQueue"), ("results", "Queue"),
                           ("lines", "SimpleQueue")]:
            assert tracks.get(name) == kind, (name, seen["tracks"])
        assert tracks.get("counter.get_lock()") == "RLock", seen["tracks"]  # the Value's
        assert tracks.get("cond") == "Condition", seen["tracks"]  # its lock: `with cond:`
        assert len(tracks) == 9, seen["tracks"]  # nothing else (a Condition's own: none)
        # The rest are on the lanes: each used, named as the program names it.
        used = dict(seen["used"])
        for name, kind in [("barrier", "Barrier"), ("here", "Connection"), ("there", "Connection"),
                           ("pool", "Pool"), ("executor", "ProcessPoolExecutor")]:
            assert used.get(name) == kind, (name, seen["used"])
        assert used.get("shared") == "Proxy", seen["used"]
        # Its processes, and none of procscope's own.
        lanes = seen["lanes"]
        assert lanes[:4] == ["MainProcess", "SyncManager-1", "worker-0", "worker-1"], lanes
        assert len(lanes) == 4 + 2 + 2, lanes  # the Pool's and the executor's two workers each
        workers = ["worker-0", "worker-1"]
        labels = [label for lane in workers for label in seen["spans"][lane]]
        # Both waited for the Lock the main held, and took it in turns; the Semaphore of
        # one likewise (one of them may have waited for it).
        assert labels.count("waiting for lock") == 2 and labels.count("holding lock") == 2, labels
        assert labels.count("holding sem") == 2 and labels.count("holding rlock") == 2, labels
        assert labels.count("shared.__setitem__()") == 2, labels
        # Both waited for the Event the main set once they were there; one for the Condition.
        assert len([s for s in labels if s.startswith("in ready.wait()")]) == 2, labels
        assert len([s for s in labels if s.startswith("in cond.wait()")]) == 1, labels
        main = seen["spans"]["MainProcess"]
        assert "holding lock" in main and "waiting in jobs.join()" in main, main
        marks = {kind for lane in workers for kind in seen["marks"][lane]}
        for kind in ("barrier.pass", "pipe.send", "queue.get", "queue.put", "queue.task_done"):
            assert kind in marks, (kind, marks)
        for kind in ("event.set", "cond.notify", "queue.put"):
            assert kind in seen["marks"]["MainProcess"], (kind, seen["marks"]["MainProcess"])
        # The Pool's and the executor's tasks: bars labelled with the call.
        tasks = [label for spans in seen["spans"].values() for label in spans
                 if label.startswith("square(")]
        assert sorted(set(tasks)) == ["square(0)", "square(1)", "square(2)", "square(3)"], tasks
        assert len(tasks) == 4 + 3, tasks
    finally:
        ctx.close()
    # The same picture in Chinese and on a phone: the tracks, and no complaint from the page.
    for lang, width, height in [("zh", 1280, 800), ("en", 390, 844), ("zh", 390, 844)]:
        ctx, page, again = open_run(browser, trace_server, run_id, "every_primitive",
                                    lang=lang, width=width, height=height)
        try:
            assert again["tracks"] == seen["tracks"]
            if lang == "zh":
                spans = [s for lane in workers for s in again["spans"][lane]]
                assert "等待 lock" in spans and "持有 lock" in spans, spans
        finally:
            ctx.close()


@pytest.mark.parametrize("name, track, kind", [("lock_work.py", "lock", "Lock"),
                                               ("joinable_queue.py", "q", "JoinableQueue")])
def test_the_tutorials_lock_and_queue_have_their_tracks(name: str, track: str, kind: str,
                                                        trace_server: Server, runtime_dir: Path,
                                                        browser: Any) -> None:
    run_id = traced(name, DATA / "tutorial", runtime_dir, trace_server)
    ctx, _, seen = open_run(browser, trace_server, run_id, name.removesuffix(".py"))
    try:
        assert seen["tracks"] == [[track, kind]], seen["tracks"]
        labels = [s for spans in seen["spans"].values() for s in spans]
        if kind == "Lock":
            # alex and egon hold it in turn, never both at once (the one that came second
            # waited, unless the first was done before it came).
            (holds,) = seen["holds"]
            assert sorted(h[0] for h in holds) == ["Process-1", "Process-2"], holds
            first, second = sorted(holds, key=lambda h: h[1])
            assert first[2] <= second[1], holds
            assert labels.count("holding lock") == 2, labels
            assert labels.count("waiting for lock") <= 1, labels
        else:
            marks = {k for kinds in seen["marks"].values() for k in kinds}
            assert {"queue.put", "queue.get", "queue.task_done"} <= marks, marks
    finally:
        ctx.close()


def test_what_was_counted_not_drawn_is_said(trace_server: Server, runtime_dir: Path,
                                            browser: Any) -> None:
    """20,000 acquires in a loop: past the rate, the rest are counted (prims.tally), and
    the page says how many under the timeline and on the lock's track."""
    run_id = traced("many_acquires.py", DATA / "trace", runtime_dir, trace_server)
    ctx, page, seen = open_run(browser, trace_server, run_id, "many_acquires")
    try:
        assert seen["tracks"] == [["lock", "Lock"]], seen["tracks"]
        note = page.locator("[data-testid=objects-note]").inner_text()
        match = re.fullmatch(r"lock: ([\d,]+) acquisitions(?:, [\d,]+ releases?)? counted, not "
                             r"drawn \(past a rate, .*\)", note)
        assert match, note
        drawn = len(seen["holds"][0])
        assert drawn + int(match.group(1).replace(",", "")) == 20_000, (drawn, note)
    finally:
        ctx.close()


def test_the_tutorials_pool_labels_each_task(trace_server: Server, runtime_dir: Path,
                                            browser: Any) -> None:
    run_id = traced("pool_apply.py", DATA / "tutorial", runtime_dir, trace_server)
    ctx, _, seen = open_run(browser, trace_server, run_id, "pool_apply")
    try:
        tasks = [s for spans in seen["spans"].values() for s in spans if s.startswith("work(")]
        assert tasks == ["work('alex')"] * 8, tasks
        assert [name for name, kind in seen["used"] if kind == "Pool"] == ["p"], seen["used"]
    finally:
        ctx.close()


def test_a_phone_shows_no_params_button_for_a_traced_program(
        trace_server: Server, runtime_dir: Path, browser: Any) -> None:
    """Regression: on a phone the top bar of a program's run showed "Params", which folds
    away a lesson's form: a program has none."""
    run_id = traced("pool_apply.py", DATA / "tutorial", runtime_dir, trace_server)
    ctx, page, _ = open_run(browser, trace_server, run_id, "pool_apply", width=390, height=844)
    try:
        assert page.locator("body.program-run").count() == 1
        assert not page.locator("[data-testid=controls-toggle]").is_visible()
    finally:
        ctx.close()


def test_a_programs_replay_shows_the_program_in_its_sidebar(
        trace_server: Server, runtime_dir: Path, browser: Any, tmp_path: Path) -> None:
    """Regression: replay.html exported from a traced program's run showed an empty
    lesson's sidebar; it shows the program, as the live page does."""
    import httpx
    from browser import open_offline, screenshot

    run_id = traced("pool_apply.py", DATA / "tutorial", runtime_dir, trace_server)
    replay = httpx.get(f"{trace_server.url}/api/runs/{run_id}/replay.html",
                       headers=trace_server.headers, timeout=60)
    assert replay.status_code == 200
    path = tmp_path / "replay.html"
    path.write_bytes(replay.content)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        open_offline(page, path)
        program = page.locator(".sidebar [data-testid=program]")
        program.wait_for()
        assert program.locator("h1").inner_text() == "pool_apply.py"
        assert page.locator("[data-testid=program-exitcode]").inner_text() == "0"
        assert "pool_apply.py" in page.title()
        assert not page.locator(".legend .lesson-only").first.is_visible()
        screenshot(page, "trace-replay-pool_apply")
    finally:
        ctx.close()
