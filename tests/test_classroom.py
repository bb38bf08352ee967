"""Issue 13, the classroom: a teacher's browser and students' browsers on one server bound to
every interface (so tokens are in force), reached over 127.0.0.1 only.

Students' pages follow the teacher's new runs live (pushed on the classroom stream, no
click, within 1 s); a watch-only page offers no Stop or Run, and the server refuses the
student's hand-made DELETE; a prediction round with 30 student browsers counts 30 answers
and shows their distribution beside the run's real outcome; a phone (390x844, touch) gets
lanes the width of its screen, and a tap keeps a mark's details shown; no token stays in
the address bar. Screenshots of the phone view and of the prediction round go to
test-output/.

Nothing waits for a fixed time: every wait is for the condition the assertion needs.
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from browser import PageErrors, screenshot
from conftest import Server, read_events
from playwright.sync_api import Browser, BrowserContext, Page
from test_page import choose, frame_after, wait_final

STUDENTS = 30
# Seconds an HTTP request may take: beside a CPU hog with 30 Chromium pages open, a plain
# GET took over httpx's default 5 s (a clean-clone run: httpx.ReadTimeout).
SLOW = 60


@pytest.fixture(scope="module")
def classroom() -> Iterator[Server]:
    # Bound to every interface, so a token is generated and in force; reached on 127.0.0.1.
    srv = Server("--host", "0.0.0.0", "--max-runs", "4")
    yield srv
    srv.stop()


def viewer_link(srv: Server) -> str:
    return srv.links()["students"]


def open_as(browser: Browser, url: str, token: str, wait: bool = True, **context: Any
            ) -> tuple[BrowserContext, Page, PageErrors]:
    """A browser context with its own cookies, on `url` with the token link; with `wait`,
    once its page reads the classroom stream (else wait_open() later: pages load at once)."""
    ctx = browser.new_context(**({"viewport": {"width": 1280, "height": 800}} | context))
    page = ctx.new_page()
    errors = PageErrors()
    errors.watch(page)
    page.goto(f"{url}?token={token}", wait_until="load" if wait else "commit")
    if wait:
        wait_open(page)
    return ctx, page, errors


def wait_open(page: Page) -> None:
    page.wait_for_function("window.procscope && procscope.follower.stream", timeout=60_000)


def ms_since(iso: str, at_ms: float) -> float:
    return at_ms - datetime.fromisoformat(iso).timestamp() * 1000


def switched(page: Page, run_id: str, timeout: float = 10) -> float:
    """Wait until the page shows run `run_id` by following; the Date.now() it switched."""
    at = page.wait_for_function(
        """id => { const hit = procscope.follower.log.find(e => e.id === id);
                   return hit && procscope.panels.some(p => String(p.run.id) === id)
                     && hit.at; }""",
        arg=run_id, timeout=timeout * 1000).json_value()
    return float(at)


def test_a_student_follows_the_teachers_new_run_and_may_not_stop_it(
        classroom: Server, browser: Browser) -> None:
    url = classroom.url + "/"
    teacher_ctx, teacher, teacher_errors = open_as(browser, url, classroom.token or "")
    student_ctx, student, student_errors = open_as(browser, url, viewer_link(classroom))
    try:
        # The token left the address bar at once; the cookie holds it.
        assert "token" not in teacher.evaluate("location.href")
        assert "token" not in student.evaluate("location.href")
        # A watch-only page offers nothing it may not use.
        assert student.locator("[data-testid=start-run]").count() == 0
        assert student.locator("[data-proxy=start-run]").count() == 0
        assert student.locator("[data-testid=open-question]").count() == 0
        assert teacher.locator("[data-testid=start-run]").count() == 1

        choose(teacher, "join", durations=[1.5], time_scale=1)
        teacher.click("[data-testid=start-run]")
        teacher.wait_for_url(re.compile(r"/runs/\d+$"))
        run_id = teacher.url.rsplit("/", 1)[1]
        at = switched(student, run_id, timeout=5)
        run = httpx.get(f"{classroom.url}/api/runs/{run_id}", timeout=SLOW,
                        headers=classroom.headers).json()
        assert ms_since(run["created_at"], at) < 1000  # no click, within 1 s of its start
        assert student.url.endswith(f"/runs/{run_id}")
        # The teacher's page has Stop while the run is live; the student's has not.
        teacher.wait_for_selector(".run-timeline .stop:not([hidden])")
        assert student.locator(".run-timeline .stop").is_hidden()
        # A hand-made DELETE with the student's cookie: 403, and nothing is cancelled.
        denied = student_ctx.request.delete(f"{classroom.url}/api/runs/{run_id}")
        assert denied.status == 403
        status = httpx.get(f"{classroom.url}/api/runs/{run_id}", timeout=SLOW,
                           headers=classroom.headers).json()["status"]
        assert status in ("running", "succeeded")
        assert wait_final(student) == ["succeeded"]
        # The run's page shows its own params in the form ("Run again" repeats it).
        assert teacher.locator("#param-durations").input_value() == "1.5"
        # A page without the cookie, as a browser asks for it: how to get in, in HTML.
        page = httpx.get(f"{classroom.url}/runs/{run_id}", timeout=SLOW,
                         headers={"Accept": "text/html"})
        assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
        assert "?token=" in page.text
        api = httpx.get(f"{classroom.url}/api/runs/{run_id}", timeout=SLOW)
        assert api.status_code == 401 and api.json()["detail"]
        assert teacher_errors.messages == [] and student_errors.messages == []
    finally:
        teacher_ctx.close()
        student_ctx.close()


def test_a_student_who_stays_on_a_run_is_offered_the_new_one(
        classroom: Server, browser: Browser) -> None:
    with httpx.Client(base_url=classroom.url, headers=classroom.headers, timeout=30) as c:
        first, newer = (c.post("/api/runs", json={"experiment": "join", "params": {
            "durations": [0.1], "time_scale": 0.1}}).json()["id"] for _ in range(2))
        read_events(c, first)
        read_events(c, newer)
        ctx, page, errors = open_as(browser, classroom.url + f"/runs/{newer}",
                                    viewer_link(classroom))
        try:
            wait_final(page)
            page.locator(f"#run-list a[data-run='{first}']").click()  # chose an older run
            page.wait_for_url(re.compile(rf"/runs/{first}$"))
            second = c.post("/api/runs", json={"experiment": "join", "params": {
                "durations": [0.1], "time_scale": 0.1}}).json()["id"]
            page.wait_for_selector("[data-testid=follow-banner]:not([hidden])")
            assert f"#{second}" in page.locator("[data-testid=follow-banner]").inner_text()
            assert page.url.endswith(f"/runs/{first}")
            page.click("[data-testid=follow-jump]")
            page.wait_for_url(re.compile(rf"/runs/{second}$"))
            read_events(c, second)
            assert errors.messages == []
        finally:
            ctx.close()


# 31 Chromium pages on 2 cores: ~40 s in CI, over 120 s when other work shares the cores.
@pytest.mark.timeout(300)
def test_a_prediction_round_with_thirty_students(classroom: Server, browser: Browser) -> None:
    url = classroom.url + "/"
    teacher_ctx, teacher, teacher_errors = open_as(browser, url, classroom.token or "",
                                                   viewport={"width": 1440, "height": 900})
    students: list[tuple[BrowserContext, Page, PageErrors]] = []
    try:
        choose(teacher, "ticket_rush", n=20, time_scale=0.1)
        teacher.click("[data-testid=open-question]")
        teacher.wait_for_selector("[data-testid=question]:not([hidden])")
        assert not teacher.locator("#param-lock").is_checked()  # the question is about lock off
        for _ in range(STUDENTS):  # all loading at once, then each waited for
            students.append(open_as(browser, url, viewer_link(classroom), wait=False))
        for _, page, _ in students:
            wait_open(page)
        for i, (_, page, _) in enumerate(students):
            page.wait_for_selector("[data-testid=prediction-answer]")
            page.fill("[data-testid=prediction-answer]", str([1, 1, 2, 5, 10, 20][i % 6]))
            page.click("[data-testid=prediction-submit]")
        for _, page, _ in students:
            page.wait_for_function(
                "document.querySelector('[data-testid=prediction-yours]').textContent !== ''")
        teacher.wait_for_function(
            f"document.querySelector('[data-testid=prediction-count]').dataset.total === "
            f"'{STUDENTS}'", timeout=10_000)
        count = teacher.locator("[data-testid=prediction-count]").inner_text()
        assert f"{STUDENTS} answers" in count
        # Answers are numbers in bounds: anything else is refused (and never shown as HTML).
        bad = students[0][0].request.post(f"{classroom.url}/api/prediction/answers",
                                          data={"answer": "<b>1</b>"})
        assert bad.status == 422
        screenshot(teacher, "classroom-question-open")

        teacher.click("[data-testid=start-run]")
        teacher.wait_for_url(re.compile(r"/runs/\d+$"))
        run_id = teacher.url.rsplit("/", 1)[1]
        created = httpx.get(f"{classroom.url}/api/runs/{run_id}", timeout=SLOW,
                            headers=classroom.headers).json()["created_at"]
        waits = sorted(ms_since(created, switched(page, run_id)) for _, page, _ in students)
        p50 = statistics.median(waits)
        p95 = waits[min(len(waits) - 1, round(0.95 * len(waits)) - 1)]
        print(f"\nswitch to the teacher's new run over {len(waits)} student pages: "
              f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {waits[-1]:.0f} ms")
        # Each switched by itself (switched() waits at most 10 s); how fast is printed, not
        # held: 31 Chromium pages share 2 cores with the run (p50 2.5 s was seen in a CI run,
        # 0.3 s on a quiet machine). The 1 s bound is held for one student, in the first test.
        assert len(waits) == STUDENTS

        wait_final(teacher)
        block = teacher.locator("[data-testid=result] [data-testid=prediction-result]")
        assert f"({STUDENTS} answers)" in (block.text_content() or "")
        run = httpx.get(f"{classroom.url}/api/runs/{run_id}", timeout=SLOW,
                        headers=classroom.headers).json()
        kept = run["prediction"]
        assert kept["total"] == STUDENTS and sum(n for _, n in kept["answers"]) == STUDENTS
        assert kept["truth"] == run["result"]["sold"]
        assert f"What really happened: {run['result']['sold']} tickets" in \
            block.locator("[data-testid=prediction-truth]").inner_text()
        assert block.locator(".bar").count() == len(kept["answers"])
        block.scroll_into_view_if_needed()
        screenshot(teacher, "classroom-prediction-round")
        # A student's page shows the same, beside the same outcome.
        one = students[0][1]
        wait_final(one)
        theirs = one.locator("[data-testid=prediction-result]").text_content() or ""
        assert f"({STUDENTS} answers)" in theirs
        one.locator("[data-testid=prediction-result]").scroll_into_view_if_needed()
        screenshot(one, "classroom-prediction-student")
        assert teacher_errors.messages == []
        assert all(errors.messages == [] for _, _, errors in students)
        assert httpx.get(f"{classroom.url}/api/prediction", timeout=SLOW,
                         headers=classroom.headers).json()["question"]["open"] is False
    finally:
        for ctx, _, _ in students:
            ctx.close()
        teacher_ctx.close()


def on_a_phone(classroom: Server, browser: Browser, experiment: str, **params: Any
               ) -> tuple[BrowserContext, Page, PageErrors]:
    """A finished run of `experiment`, opened by a student on a 390x844 touch screen."""
    with httpx.Client(base_url=classroom.url, headers=classroom.headers, timeout=30) as c:
        run_id = c.post("/api/runs", json={"experiment": experiment,
                                           "params": params}).json()["id"]
        read_events(c, run_id)
    return open_as(browser, classroom.url + f"/runs/{run_id}", viewer_link(classroom),
                   viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)


def test_a_phone_gets_the_width_and_a_tap_keeps_the_details(
        classroom: Server, browser: Browser) -> None:
    ctx, page, errors = on_a_phone(classroom, browser, "ticket_rush", n=8, time_scale=0.1)
    try:
        wait_final(page)
        procs = page.locator("[data-testid=timeline-procs]").bounding_box()
        cores = page.locator("[data-testid=timeline-cores]").bounding_box()
        assert procs is not None and cores is not None
        assert procs["width"] >= 300 and cores["width"] >= 300
        assert page.locator(".sidebar").is_hidden()  # the controls folded away
        # The middle of the first process lane: its details, kept until the next tap.
        geom = page.evaluate("""() => { const g = procscope.panels[0].timeline.geom;
                                        return {gutter: g.gutter, top: g.laneTop, h: g.laneH,
                                                w: g.plotW}; }""")
        x = procs["x"] + geom["gutter"] + geom["w"] / 2
        y = procs["y"] + geom["top"] + geom["h"] / 2
        page.touchscreen.tap(x, y)
        page.wait_for_selector(".tooltip:not([hidden])")
        seen = page.evaluate("procscope.frames")
        page.evaluate("procscope.redraw()")
        frame_after(page, seen)
        assert page.locator(".tooltip").is_visible()  # still shown after the tap and a frame
        screenshot(page, "classroom-phone")
        page.click("[data-testid=controls-toggle]")
        assert page.locator(".sidebar").is_visible()
        assert errors.messages == []
    finally:
        ctx.close()


def test_presenter_keeps_the_params_one_key_away(classroom: Server, browser: Browser) -> None:
    with httpx.Client(base_url=classroom.url, headers=classroom.headers, timeout=30) as c:
        run_id = c.post("/api/runs", json={"experiment": "join", "params": {
            "durations": [0.2, 0.4], "time_scale": 0.5}}).json()["id"]
        read_events(c, run_id)
    ctx, page, errors = open_as(browser, classroom.url + f"/runs/{run_id}",
                                classroom.token or "", viewport={"width": 1280, "height": 720})
    try:
        wait_final(page)
        page.keyboard.press("p")
        page.wait_for_selector("body.presenter")
        assert page.locator(".sidebar").is_hidden()
        page.keyboard.press("c")  # the params, over the timeline, without leaving presenter
        page.wait_for_selector("#param-durations")
        assert page.locator("#param-durations").is_visible()
        assert page.locator("#param-durations").input_value() == "0.2, 0.4"  # this run's
        assert page.locator("body.presenter").count() == 1
        screenshot(page, "classroom-presenter-params")
        page.keyboard.press("c")
        assert page.locator(".sidebar").is_hidden()
        # The console and the result are on the stage, below the timeline.
        for testid in ("console", "result"):
            page.locator(f"[data-testid={testid}]").scroll_into_view_if_needed()
            assert page.locator(f"[data-testid={testid}]").is_visible()
        assert page.locator("body.presenter").count() == 1
        assert errors.messages == []
    finally:
        ctx.close()


def test_what_if_the_lock_holder_is_killed(classroom: Server, browser: Browser) -> None:
    """A token holder kills the lock holder of a live ticket_rush from its lane: the kill is
    on the timeline and the page says why the others now wait forever; the students' kill
    is 403 and kills nothing; a pid outside the run is refused."""
    viewer = {"Authorization": f"Bearer {viewer_link(classroom)}"}
    ctx, page, errors = open_as(browser, classroom.url + "/", classroom.token or "")
    with httpx.Client(base_url=classroom.url, headers=classroom.headers, timeout=30) as c:
        # time_scale 10: each buyer holds the Lock 50 s (write_delay 5 × 10), so the holder
        # picked below is still the holder when Kill is clicked, however slow the machine.
        run_id = c.post("/api/runs", json={"experiment": "ticket_rush", "params": {
            "n": 4, "tickets": 4, "lock": True, "read_delay": 0.05, "write_delay": 5,
            "time_scale": 10}}).json()["id"]
        try:
            switched(page, run_id)  # the teacher's other tab follows too
            # From the page: a click on the holder's lane (pointerdown + pointerup, what a
            # click sends), found and clicked in one task of the page: between a read and a
            # click of Playwright's, a lane named meanwhile (a process the kernel showed
            # first as "pid N") moves in the lane order, and the click lands on another.
            holder = page.wait_for_function("""() => {
              const panel = procscope.panels[0], m = panel.model, tl = panel.timeline;
              const s = m.lock.holds.find(h => h.t1 === null);
              if (!s || !tl.geom || m.now(performance.now()) - s.t0 > 10) return null;
              const g = tl.geom, row = m.rows().indexOf(s.lane) - tl.scroll;
              if (row < 0 || row >= g.visible) return null;
              const rect = tl.procs.getBoundingClientRect();
              const at = {bubbles: true, button: 0, pointerId: 1, pointerType: "mouse",
                          isPrimary: true, clientX: rect.left + g.gutter + g.plotW * 0.6,
                          clientY: rect.top + g.laneTop + (row + 0.5) * g.laneH};
              tl.procs.dispatchEvent(new PointerEvent("pointerdown", at));
              tl.procs.dispatchEvent(new PointerEvent("pointerup", at));
              return {pid: s.lane.pid, name: s.lane.name};
            }""", timeout=20_000).json_value()
            bar = page.locator("[data-testid=what-if]")
            bar.wait_for()
            assert bar.get_attribute("data-pid") == str(holder["pid"])
            page.click("[data-testid=what-if-kill]")
            note = page.locator("[data-testid=what-if-note]")
            page.wait_for_function(
                "document.querySelector('[data-testid=what-if-note]')?.textContent"
                ".includes('wait forever')", timeout=10_000)
            assert holder["name"] in note.inner_text() and "holding the Lock" in note.inner_text()
            # The followed run's lesson and params are in the form too.
            page.wait_for_selector("#params-form[data-experiment=ticket_rush]")
            assert float(page.locator("#param-write_delay").input_value()) == 5
            screenshot(page, "classroom-what-if-lock-holder-killed")
            # The others wait forever. A student's kill request: 403, and the waiter lives on.
            waiter = page.evaluate("""holder => procscope.panels[0].model.lanes.find(l =>
              l.name.startsWith("buyer-") && l.pid !== holder && l.exit === null).pid""",
                                   holder["pid"])
            denied = httpx.post(f"{classroom.url}/api/runs/{run_id}/signal", timeout=SLOW,
                                headers=viewer,
                                json={"pid": waiter, "signal": "SIGKILL"})
            assert denied.status_code == 403
            os.kill(waiter, 0)  # still there
            # Not a process of the run (this test's, the server's): refused, nothing sent.
            for pid in (os.getpid(), classroom.proc.pid):
                refused = c.post(f"/api/runs/{run_id}/signal",
                                 json={"pid": pid, "signal": "SIGSTOP"})
                assert refused.status_code == 422, refused.text
        finally:
            assert c.delete(f"/api/runs/{run_id}").json()["status"] == "cancelled"
    try:
        with httpx.Client(base_url=classroom.url, headers=classroom.headers) as c:
            kinds = [e for e in read_events(c, run_id) if e["kind"] == "proc.signal"]
        assert [(e["data"]["signal"], e["data"]["target"]) for e in kinds] == [
            ("SIGKILL", holder["pid"])]
        assert errors.messages == []
    finally:
        ctx.close()


def _touch(cdp: Any, kind: str, points: list[tuple[float, float]]) -> None:
    # Chromium's own touch input (what a finger sends), turned by the browser into the
    # pointer events the page listens to; Playwright's touchscreen only taps.
    touch_points = [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})


def test_a_phone_pinch_zooms_and_a_drag_pans(classroom: Server, browser: Browser) -> None:
    ctx, page, errors = on_a_phone(classroom, browser, "join", time_scale=0.1)
    try:
        wait_final(page)
        box = page.locator("[data-testid=timeline-procs]").bounding_box()
        assert box is not None
        geom = page.evaluate("""() => { const g = procscope.panels[0].timeline.geom;
                                        return {gutter: g.gutter, top: g.laneTop, w: g.plotW}; }""")
        mid_x = box["x"] + geom["gutter"] + geom["w"] / 2
        y = box["y"] + geom["top"] + 10
        window = "[procscope.view.t0, procscope.view.t1]"
        t0, t1 = page.evaluate(window)
        cdp = page.context.new_cdp_session(page)
        # Two fingers 40 px apart spread to 160 px: the view shows about a quarter as much.
        _touch(cdp, "touchStart", [(mid_x - 20, y), (mid_x + 20, y)])
        for step in range(1, 7):
            _touch(cdp, "touchMove", [(mid_x - 20 - 10 * step, y), (mid_x + 20 + 10 * step, y)])
        _touch(cdp, "touchEnd", [])
        z0, z1 = page.evaluate(window)
        assert (z1 - z0) < 0.5 * (t1 - t0), ((t0, t1), (z0, z1))
        assert z0 < (t0 + t1) / 2 < z1  # about the fingers' middle, the middle of the plot
        # One finger dragged 100 px to the right: earlier times come into view, same span.
        _touch(cdp, "touchStart", [(mid_x, y)])
        for step in range(1, 6):
            _touch(cdp, "touchMove", [(mid_x + 20 * step, y)])
        _touch(cdp, "touchEnd", [])
        p0, p1 = page.evaluate(window)
        assert p0 < z0 and abs((p1 - p0) - (z1 - z0)) < 1e-6 * max(1.0, z1 - z0)
        assert page.locator(".tooltip").is_hidden()  # a drag is not a tap
        screenshot(page, "classroom-phone-pinched")
        assert errors.messages == []
    finally:
        ctx.close()


# ---- issue 23, the walk's bugs ----------------------------------------------------------


def test_what_if_a_pool_worker_is_killed_the_lost_task_is_the_lesson(
        classroom: Server, browser: Browser) -> None:
    """Issue 23: a pool worker killed from the page (What if... Kill) failed the run with an
    expanded traceback of procscope's own code; the What-if bar stayed on the ended run;
    the header cut the outcome to a few letters at 1280 wide. Now: the lesson's words and
    no traceback, the bar gone, the outcome whole in the header."""
    ctx, page, errors = open_as(browser, classroom.url + "/", classroom.token or "",
                                viewport={"width": 1280, "height": 720})
    run_id = None
    try:
        choose(page, "pool_apply", mode="apply", processes=2, tasks=4, task_seconds=30)
        page.click("[data-testid=start-run]")
        page.wait_for_url(re.compile(r"/runs/\d+$"))
        run_id = page.url.rsplit("/", 1)[1]
        # A worker in its task for a while; where the middle of that task is on the canvas
        # (relative to it: the page above may still move).
        worker = page.wait_for_function("""() => {
          const p = procscope.panels[0];
          if (!p || !p.live) return null;
          const now = p.model.now(performance.now());
          const rows = p.model.rows();
          const i = rows.findIndex(l => l.spans.some(s => s.kind === "task" && s.t1 === null
                                                     && now - s.t0 > 0.3));
          if (i < 0) return null;
          const task = rows[i].spans.find(s => s.kind === "task" && s.t1 === null);
          const tl = p.timeline, g = tl.geom;
          return {pid: rows[i].pid, x: tl.x((task.t0 + now) / 2, procscope.view),
                  y: g.laneTop + (i - tl.scroll + 0.5) * g.laneH};
        }""", timeout=30_000).json_value()
        page.locator("[data-testid=timeline-procs]").click(
            position={"x": worker["x"], "y": worker["y"]})
        bar = page.locator("[data-testid=what-if]")
        bar.wait_for()
        assert bar.get_attribute("data-pid") == str(worker["pid"])
        page.click("[data-testid=what-if-kill]")
        assert wait_final(page) == ["failed"]
        bar.wait_for(state="detached")  # an ended run takes no more signals
        outcome = page.locator("[data-testid=result] .outcome").inner_text()
        assert f"was lost: its pool worker (pid {worker['pid']}) died" in outcome, outcome
        assert "RuntimeError" not in outcome
        assert page.locator("[data-testid=traceback]").count() == 0
        head = page.locator(".run-outcome")
        assert head.inner_text() == outcome
        assert head.evaluate("e => e.scrollWidth <= e.clientWidth && "
                             "e.scrollHeight <= e.clientHeight + 1")  # shown whole, not cut
        screenshot(page, "classroom-what-if-pool-worker-killed-1280")
        assert errors.messages == []
    finally:
        ctx.close()
        if run_id is not None:  # a failed assertion must not leave 30 s tasks behind
            httpx.delete(f"{classroom.url}/api/runs/{run_id}", headers=classroom.headers)


def test_the_form_follows_the_run_shown_and_the_question(classroom: Server,
                                                         browser: Browser) -> None:
    """Issue 23: a student who opened an older run kept the teacher's lesson in the select
    and the form; when the teacher opened a question, the page kept the old lesson under it."""
    with httpx.Client(base_url=classroom.url, headers=classroom.headers, timeout=30) as c:
        older = c.post("/api/runs", json={"experiment": "ticket_rush", "params": {
            "n": 6, "write_delay": 0.02, "time_scale": 0.1}}).json()["id"]
        newest = c.post("/api/runs", json={"experiment": "join", "params": {
            "durations": [0.1], "time_scale": 0.1}}).json()["id"]
        read_events(c, older)
        read_events(c, newest)
        ctx, page, errors = open_as(browser, classroom.url + f"/runs/{newest}",
                                    viewer_link(classroom))
        select = page.locator("[data-testid=experiment-select]")
        try:
            wait_final(page)
            assert select.input_value() == "join"
            page.locator(f"#run-list a[data-run='{older}']").click()
            page.wait_for_selector("#params-form[data-experiment=ticket_rush]"
                                   f"[data-run='{older}']")
            assert select.input_value() == "ticket_rush"
            assert page.locator("#param-n").input_value() == "6"
            assert "ticket rush" in page.locator(".lesson-head h1").inner_text()
            page.locator(f"#run-list a[data-run='{newest}']").click()  # following again
            page.wait_for_selector(f"#params-form[data-experiment=join][data-run='{newest}']")
            asked = c.post("/api/prediction", json={"experiment": "ticket_rush"})
            assert asked.status_code == 201, asked.text
            try:
                page.wait_for_selector("[data-testid=question]:not([hidden])")
                page.wait_for_selector("#params-form[data-experiment=ticket_rush]")
                assert select.input_value() == "ticket_rush"
                assert not page.locator("#param-lock").is_checked()  # the question's params
                assert page.evaluate("procscope.panels.length") == 0  # not the old run
                assert page.url.endswith("/?experiment=ticket_rush")
                screenshot(page, "classroom-question-follows-student")
            finally:
                c.delete("/api/prediction")
            assert errors.messages == []
        finally:
            ctx.close()


def test_a_phone_runs_from_the_empty_page_and_from_the_drawer(classroom: Server,
                                                              browser: Browser) -> None:
    """Issue 23: on a phone, the empty page said "press ▶ Run" with no Run outside the
    drawer, and ▶ Run inside the drawer left it open over the run that had just started."""
    ctx, page, errors = open_as(browser, classroom.url + "/", classroom.token or "",
                                viewport={"width": 390, "height": 844}, has_touch=True,
                                is_mobile=True)
    try:
        run = page.locator("[data-testid=empty-run]")
        assert run.is_visible() and page.locator(".sidebar").is_hidden()
        page.tap("[data-testid=controls-toggle]")
        choose(page, "join", durations=[0.2], time_scale=0.1)
        page.tap("[data-testid=controls-toggle]")
        assert page.locator(".sidebar").is_hidden()
        run.tap()  # the empty page's own Run
        page.wait_for_url(re.compile(r"/runs/\d+$"))
        assert wait_final(page) == ["succeeded"]
        first = page.url
        page.tap("[data-testid=controls-toggle]")
        assert page.locator(".sidebar").is_visible()
        page.tap("[data-testid=start-run]")  # ▶ Run inside the drawer
        page.wait_for_function("url => location.href !== url", arg=first)
        page.wait_for_selector(".sidebar", state="hidden")  # the drawer made way for the run
        assert wait_final(page) == ["succeeded"]
        procs = page.locator("[data-testid=timeline-procs]").bounding_box()
        assert procs is not None and 0 <= procs["y"] < 844
        screenshot(page, "classroom-phone-run-from-the-drawer")
        assert errors.messages == []
    finally:
        ctx.close()
