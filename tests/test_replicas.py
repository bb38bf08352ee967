"""Replicas sharing runs through Redis (issue 16): real replica servers on free loopback
ports, a real redis-server of the tests' own (tests/redis_server.py), real SSE clients.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser import PageErrors, screenshot
from tests.conftest import ROOT, Server, alive, free_port, group_members, read_until
from tests.machine_load import LoadMeter, load
from tests.redis_server import RedisServer, redis_server

__all__ = ["load", "redis_server"]  # the fixtures, imported for pytest

SELFTEST = {"PROCSCOPE_SELFTEST": "1"}
HOLD_1S = {"PROCSCOPE_REDIS_HOLD_SECONDS": "1"}


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer) -> Iterator[list[Server]]:
    """Three replicas, A B C, sharing one Redis."""
    # PROCSCOPE_SELFTEST: the load generator `flood`, a run that emits at a steady rate.
    # A finished run's copy is let go 1 s after it was last asked for (app.cluster.redis_held).
    servers = [Server("--redis", redis_server.url, env={**SELFTEST, **HOLD_1S})
               for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


def _collect(into: list[dict[str, Any]], n: int) -> Callable[[dict[str, Any]], bool]:
    """A read_until condition: keep each proc.start in `into`, true at the `n`-th."""
    def seen(e: dict[str, Any]) -> bool:
        if e["kind"] == "proc.start":
            into.append(e)
        return len(into) == n
    return seen


def start(server: Server, experiment: str, **params: Any) -> str:
    response = httpx.post(server.url + "/api/runs", json={"experiment": experiment,
                                                          "params": params}, timeout=30)
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


def raw_stream(server: Server, run_id: str, headers: dict[str, str] | None = None) -> bytes:
    """The SSE body as bytes, to the end of the stream (run.end)."""
    with httpx.stream("GET", f"{server.url}/api/runs/{run_id}/events", headers=headers or {},
                      timeout=60) as response:
        assert response.status_code == 200, response.read()
        return b"".join(response.iter_bytes())


def frames(body: bytes) -> list[bytes]:
    """The event frames of an SSE body (retry: and ping comments left out)."""
    return [f for f in body.split(b"\n\n") if f.startswith(b"id: ")]


def frames_until(server: Server, run_id: str, last: int,
                 headers: dict[str, str] | None = None) -> list[bytes]:
    """The SSE frames as bytes, up to the one of seq `last`; then disconnect."""
    got: list[bytes] = []
    buffer = b""
    with httpx.stream("GET", f"{server.url}/api/runs/{run_id}/events", headers=headers or {},
                      timeout=60) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_bytes():
            buffer += chunk
            *done, buffer = buffer.split(b"\n\n")
            got += [f for f in done if f.startswith(b"id: ")]
            if got and seq_of(got[-1]) >= last:
                break
    assert got and seq_of(got[-1]) >= last, "the stream ended first"
    return got


def seq_of(frame: bytes) -> int:
    return int(frame.split(b"\n", 1)[0][4:])


def seen_by(server: Server, run_id: str, bound: float = 10) -> None:
    """Until the replica lists the run: `bound` s on free cores, held to the load."""
    with LoadMeter() as meter:
        meter.wait_for(lambda: httpx.get(f"{server.url}/api/runs/{run_id}").status_code == 200,
                       bound, lambda: f"for {server.url} to list run {run_id}")


def test_a_run_started_on_a_streams_byte_identically_from_b_and_c(
        replicas: list[Server], load: LoadMeter) -> None:
    a, b, c = replicas
    run_id = start(a, "join", durations=[0.4, 0.8])
    for other in (b, c):
        seen_by(other, run_id)
    bodies: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda s=s: bodies.__setitem__(s.url, raw_stream(
        s, run_id))) for s in replicas]
    for reader in readers:
        reader.start()
    for reader in readers:
        load.wait_for(lambda reader=reader: not reader.is_alive(), 60,
                      lambda: "for the three streams to end")
    assert len(bodies) == 3
    ours = frames(bodies[a.url])
    assert ours and b"event: run.end" in ours[-1]
    assert frames(bodies[b.url]) == ours and frames(bodies[c.url]) == ours
    for server in replicas:  # every replica lists it with the same final record
        got = httpx.get(f"{server.url}/api/runs/{run_id}").json()
        assert got["status"] == "succeeded" and got["events"] == len(ours)


def test_last_event_id_from_a_continues_on_b(replicas: list[Server]) -> None:
    a, b, _ = replicas
    run_id = start(a, "join", durations=[0.3, 0.6])
    with httpx.Client(base_url=a.url, timeout=30) as client:
        first = read_until(client, run_id, lambda e: e["seq"] == 12)
    seen_by(b, run_id)
    rest = frames(raw_stream(b, run_id, {"Last-Event-ID": "12"}))
    whole = frames(raw_stream(a, run_id))
    assert [e["seq"] for e in first] == list(range(1, 13))
    assert rest == whole[12:]


def test_cancel_on_b_stops_the_processes_on_a(replicas: list[Server],
                                              load: LoadMeter) -> None:
    a, b, _ = replicas
    run_id = start(a, "join", durations=[30, 30])
    seen_by(b, run_id)
    with httpx.Client(base_url=b.url, timeout=30) as client:
        started: list[dict[str, Any]] = []
        read_until(client, run_id, _collect(started, 3))  # the main, two workers
        pids = {e["pid"] for e in started}
        asked = time.monotonic()
        response = client.delete(f"/api/runs/{run_id}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    load.since(asked).assert_within(10, "the cancel on B")
    main_pid = httpx.get(f"{a.url}/api/runs/{run_id}").json()["pid"]
    assert main_pid in pids
    assert not alive(pids), "A's processes outlived the cancel on B"
    assert not group_members(main_pid)


def test_kill_9_of_the_owner_ends_its_live_runs_interrupted_everywhere(
        redis_server: RedisServer, replicas: list[Server], load: LoadMeter) -> None:
    _, b, c = replicas
    doomed = Server("--redis", redis_server.url)
    try:
        run_id = start(doomed, "join", durations=[30, 30])
        seen_by(b, run_id)
        with httpx.Client(base_url=b.url, timeout=30) as client:
            read_until(client, run_id, lambda e: e["kind"] == "proc.start")
        doomed.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for server in (b, c):
            with httpx.Client(base_url=server.url, timeout=30) as client:
                events = read_until(client, run_id, lambda e: e["kind"] == "run.end")
            assert events[-1]["kind"] == "run.end"
            assert events[-1]["data"]["status"] == "interrupted"
        load.since(killed).assert_within(8, "a dead owner's run ended everywhere")
        for server in (b, c):
            assert httpx.get(f"{server.url}/api/runs/{run_id}").json()["status"] == \
                "interrupted"
    finally:
        doomed.stop()


def test_a_replica_that_cannot_reach_redis_fails_with_a_clear_message() -> None:
    nobody = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "procscope", "--port", str(free_port()), "--db", ":memory:",
         "--redis", f"redis://127.0.0.1:{nobody}/0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert f"cannot reach Redis at redis://127.0.0.1:{nobody}/0" in done.stderr + done.stdout


def test_a_redis_restart_mid_run_loses_nothing_acknowledged(
        redis_server: RedisServer, replicas: list[Server], load: LoadMeter) -> None:
    a, b, _ = replicas
    run_id = start(a, "join", durations=[2.5, 3.0])
    seen_by(b, run_id)
    chunks: list[bytes] = []  # B's stream as it arrives

    def read_b() -> None:
        with httpx.stream("GET", f"{b.url}/api/runs/{run_id}/events", timeout=60) as response:
            assert response.status_code == 200, response.read()
            for chunk in response.iter_bytes():
                chunks.append(chunk)

    reader = threading.Thread(target=read_b)
    reader.start()
    # Redis goes away once B's client has been sent part of the run (the workers sleep on)...
    load.wait_for(lambda: len(frames(b"".join(chunks))) >= 5, 10,
                  lambda: "for B's first frames of the run")
    redis_server.stop()
    assert httpx.get(f"{a.url}/api/runs/{run_id}").json()["status"] == "running"
    # ...and comes back once B's reader of the run's log has been cut off from it.
    load.wait_for(lambda: f"redis: reading run {run_id} after " in b.output(), 10,
                  lambda: "for B to see Redis gone")
    redis_server.start()
    reader.join(60)
    whole = frames(raw_stream(a, run_id))
    assert b"event: run.end" in whole[-1]
    assert frames(b"".join(chunks)) == whole  # B's stream resumed where it was
    # A replica that starts now reads the whole run from Redis alone.
    late = Server("--redis", redis_server.url)
    try:
        seen_by(late, run_id)
        assert frames(raw_stream(late, run_id)) == whole
    finally:
        late.stop()


def test_a_fast_reconnect_to_a_replica_still_behind_gets_every_frame_once(
        redis_server: RedisServer, replicas: list[Server], load: LoadMeter) -> None:
    """Regression (fixed in app/streams/stream.py, 8b3ab80): a client read a live run from A, then
    reconnected at once to B with Last-Event-ID while B's copy of the log was behind; B
    clamped the cursor to what it held and sent again frames the client had."""
    a, b, _ = replicas
    run_id = start(a, "flood", processes=2, events=300, rate=50)  # 100 events/s for 3 s
    seen_by(b, run_id)
    frames_until(b, run_id, 5)  # B's reader is following the run
    assert redis_server.proc is not None
    # Redis stopped: B's copy cannot grow, while A's (the owner's, in memory) does.
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        behind = httpx.get(f"{b.url}/api/runs/{run_id}", timeout=10).json()["events"]
        first = frames_until(a, run_id, behind + 25)
        last = seq_of(first[-1])
        assert httpx.get(f"{b.url}/api/runs/{run_id}", timeout=10).json()["events"] < last
        rest: list[bytes] = []
        connected = threading.Event()

        def reconnect() -> None:
            with httpx.stream("GET", f"{b.url}/api/runs/{run_id}/events",
                              headers={"Last-Event-ID": str(last)}, timeout=60) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if b"retry:" in body:  # B's stream has taken its cursor
                        connected.set()
                rest.extend(frames(body))

        reader = threading.Thread(target=reconnect)
        reader.start()
        load.wait_for(connected.is_set, 10, lambda: "for B to answer the reconnect")
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)  # B catches up with Redis again
    load.wait_for(lambda: not reader.is_alive(), 60, lambda: "for B's stream to end")
    whole = frames(raw_stream(a, run_id))
    assert b"event: run.end" in whole[-1]
    received = [seq_of(f) for f in first + rest]
    assert received == list(range(1, len(whole) + 1)), "frames lost or sent twice"
    assert first + rest == whole  # byte-identical to A's


def test_a_stalled_owner_woken_after_its_takeover_appends_nothing_and_stops_its_run(
        redis_server: RedisServer, replicas: list[Server], load: LoadMeter) -> None:
    """An owner stopped past its lease (SIGSTOP here; a GC pause, a laptop lid) has its
    live run ended `interrupted` by the others. Awake, its relay still reads the run's
    workers: it must write none of that after the run.end (fenced in Redis), and stop them."""
    _, b, c = replicas
    stalled = Server("--redis", redis_server.url, env=SELFTEST)
    try:
        run_id = start(stalled, "flood", processes=2, events=4000, rate=20)  # 40 events/s
        seen_by(b, run_id)
        started: list[dict[str, Any]] = []
        with httpx.Client(base_url=b.url, timeout=30) as client:
            read_until(client, run_id, _collect(started, 3))  # the main, 2 workers
        pids = {e["pid"] for e in started}
        main_pid = httpx.get(f"{stalled.url}/api/runs/{run_id}").json()["pid"]
        # A page watching the run on the stalled replica: each chunk, when it came.
        watched: list[tuple[float, bytes]] = []

        def watch() -> None:
            with httpx.stream("GET", f"{stalled.url}/api/runs/{run_id}/events",
                              timeout=60) as response:
                for chunk in response.iter_bytes():
                    watched.append((time.monotonic(), chunk))

        watcher = threading.Thread(target=watch)
        watcher.start()
        frames_until(stalled, run_id, 3)
        stalled.proc.send_signal(signal.SIGSTOP)
        try:
            taken = time.monotonic()
            ended = frames(raw_stream(b, run_id))  # B's stream, to the run.end B or C wrote
            load.since(taken).assert_within(10, "the takeover of the stalled owner's run")
            assert b'"status":"interrupted"' in ended[-1]
            assert alive(pids), "the workers run on (and emit) while their replica is stopped"
        finally:
            stalled.proc.send_signal(signal.SIGCONT)
            woke = time.monotonic()
        load.wait_for(lambda: not (alive(pids) or group_members(main_pid)), 15,
                      lambda: "for the woken owner to stop the run's processes")
        load.wait_for(lambda: httpx.get(f"{stalled.url}/api/runs/{run_id}").json()["status"]
                      == "interrupted", 15, lambda: "for the woken owner to read the takeover")
        # The stream a page had open there ends (a reconnect reads Redis's log), and once
        # awake the replica showed it nothing more: what it had not sent yet, and what its
        # relay read after the wake, waited for the lease's renewal (app.cluster.redis_lease),
        # which said the run is B's.
        load.wait_for(lambda: not watcher.is_alive(), 15,
                      lambda: "for the stream of the taken-over run to end")
        assert frames(b"".join(c for at, c in watched if at > woke)) == []
        # Nothing after the takeover's run.end, on any replica, the woken one included.
        for server in (b, c, stalled):
            assert frames(raw_stream(server, run_id)) == ended, server.url
        for server in (b, stalled):
            got = httpx.get(f"{server.url}/api/runs/{run_id}").json()
            assert got["status"] == "interrupted" and got["events"] == len(ended)
    finally:
        stalled.stop()


def held(server: Server) -> tuple[int, int]:
    """The runs whose logs the replica has in memory, and their events (/api/status)."""
    cluster = httpx.get(f"{server.url}/api/status", timeout=10).json()["cluster"]
    return cluster["held_runs"], cluster["held_events"]


def test_a_replica_lets_go_of_finished_runs_and_streams_them_again_from_redis(
        replicas: list[Server], load: LoadMeter) -> None:
    """A long-lived replica kept a copy of every run it ever streamed: its memory grew with
    each one. Now a finished run's copy goes once nobody asked for it for a while."""
    a, b, _ = replicas
    run_ids = [start(a, "join", durations=[0.1, 0.2]) for _ in range(3)]
    for run_id in run_ids:
        seen_by(b, run_id)
    first = {}
    for server in (b, a):
        for run_id in run_ids:
            first[run_id] = frames(raw_stream(server, run_id))  # to run.end
            # Held while it is asked for (for HOLD_1S after): looked at as soon as asked,
            # so that a crowded machine's slowness between asks cannot let it go first.
            runs, events = held(server)
            assert runs >= 1 and events >= len(first[run_id]), (server.url, runs, events)
    # No run is live in this module now.
    load.wait_for(lambda: held(a) == (0, 0) and held(b) == (0, 0), 15,
                  lambda: f"for both to let go: still held: A {held(a)}, B {held(b)}")
    for run_id in run_ids:  # asked for again: read from Redis, the same bytes
        assert frames(raw_stream(b, run_id)) == first[run_id]
        assert frames(raw_stream(a, run_id)) == first[run_id]
    for server in (a, b):  # and the run is as it was (a copy read again counts nothing)
        for run_id in run_ids:
            got = httpx.get(f"{server.url}/api/runs/{run_id}").json()
            assert got["status"] == "succeeded" and got["events"] == len(first[run_id])


def test_status_says_where_runs_are_kept_with_redis(redis_server: RedisServer,
                                                    replicas: list[Server],
                                                    load: LoadMeter) -> None:
    """/api/status said `history: {"db": ":memory:"}` on a replica: not where runs are."""
    a, b, _ = replicas
    run_id = start(a, "join", durations=[0.1])
    seen_by(b, run_id)
    whole = frames(raw_stream(b, run_id))
    for server in (a, b):
        def history_read(server: Server = server) -> dict[str, Any] | None:
            history: dict[str, Any] = httpx.get(f"{server.url}/api/status").json()["history"]
            return history if history["used_memory"] is not None else None
        # Read at the replica's next tick.
        load.wait_for(lambda: history_read() is not None, 10,
                      lambda server=server: f"for {server.url}'s history figures")
        history = history_read()
        assert history is not None
        assert "db" not in history
        assert history["redis"] == redis_server.url and history["namespace"] == "procscope"
        listed = httpx.get(f"{server.url}/api/runs").json()
        assert history["streams"] == len(listed) and history["events"] >= len(whole)
        assert history["used_memory"] > 0 and history["error"] is None


class ClassroomReader(threading.Thread):
    """One page's classroom stream (SSE, raw frames) on a replica, from the moment it is
    connected, until a frame that `stop` accepts."""

    def __init__(self, server: Server, stop: Any) -> None:
        super().__init__()
        self.server, self.stop = server, stop
        self.frames: list[bytes] = []
        self.connected = threading.Event()

    def run(self) -> None:
        buffer = b""
        with httpx.stream("GET", f"{self.server.url}/api/classroom/events",
                          timeout=30) as response:
            for chunk in response.iter_bytes():
                buffer += chunk
                if b"retry:" in buffer:
                    self.connected.set()
                *done, buffer = buffer.split(b"\n\n")
                self.frames += [f for f in done if f.startswith(b"id: ")]
                if self.frames and self.stop(self.frames[-1]):
                    return

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(f.split(b"\ndata: ", 1)[1]) for f in self.frames]


def test_the_classroom_is_the_clusters_follow_and_predict_across_replicas(
        replicas: list[Server], load: LoadMeter) -> None:
    """The classroom stream and the question were per replica: a student on B never heard
    of the run the teacher started on A, and answers sent to B were not counted on A."""
    a, b, c = replicas
    httpx.delete(f"{a.url}/api/prediction")  # none open from an earlier test (409 if none)
    readers = [ClassroomReader(s, lambda f: b"event: run.created" in f) for s in (b, c)]
    for reader in readers:
        reader.start()
    for reader in readers:
        load.wait_for(reader.connected.is_set, 10, lambda: "for a classroom stream")
    opened = httpx.post(f"{a.url}/api/prediction", json={"experiment": "join"})
    assert opened.status_code == 201, opened.text
    qid = opened.json()["question"]["id"]
    again = httpx.post(f"{b.url}/api/prediction", json={"experiment": "ticket_rush"})
    assert again.status_code == 409  # the cluster's one question is open
    answers = {b.url: 1.5, c.url: 2, a.url: 1.5}
    totals = []
    for url, value in answers.items():  # three browsers, each on its own replica
        with httpx.Client(base_url=url) as browser:
            got = browser.post("/api/prediction/answers", json={"answer": value})
            assert got.status_code == 200, got.text
            totals.append(got.json()["total"])
    with httpx.Client(base_url=b.url) as browser:  # one browser, two replicas: one answer
        assert browser.post("/api/prediction/answers", json={"answer": 3}).status_code == 200
        browser.base_url = httpx.URL(c.url)
        replaced = browser.post("/api/prediction/answers", json={"answer": 4})
        assert replaced.status_code == 200 and replaced.json()["total"] == 4
    assert totals == [1, 2, 3]
    run_id = start(a, "join", durations=[0.1])  # closes the question, with its answers
    for reader in readers:
        load.wait_for(lambda reader=reader: not reader.is_alive(), 30,
                      lambda: "for a student's page on another replica to hear of the run")
    # Both students' streams: the same frames, byte for byte, in the same order.
    assert readers[0].frames == readers[1].frames
    events = readers[0].events()
    kinds = [e["kind"] for e in events]
    assert kinds == ["prediction.open"] + ["prediction.count"] * 5 + [
        "prediction.closed", "run.created"]
    assert [e["data"]["total"] for e in events[1:6]] == [1, 2, 3, 4, 4]
    closed = events[6]["data"]
    assert closed["id"] == qid and closed["run"] == run_id and closed["total"] == 4
    assert closed["answers"] == [[1.5, 2], [2, 1], [4, 1]]
    assert events[7]["data"]["id"] == run_id
    for server in (a, b, c):  # every replica: the run keeps the answers; the question closed
        seen_by(server, run_id)
        record = httpx.get(f"{server.url}/api/runs/{run_id}").json()
        assert record["prediction"]["id"] == qid and record["prediction"]["total"] == 4
        def question(server: Server = server) -> dict[str, Any]:
            got: dict[str, Any] = httpx.get(f"{server.url}/api/prediction").json()["question"]
            return got
        # Closed, as its classroom stream tells it.
        load.wait_for(lambda: not question()["open"], 10,
                      lambda server=server: f"for the question to close on {server.url}")
        q = question()
        assert q["id"] == qid and q["answers"] == closed["answers"]


def test_a_students_page_on_b_follows_and_answers_the_teacher_on_a(
        redis_server: RedisServer, replicas: list[Server], browser: Browser,
        load: LoadMeter) -> None:
    """In Chromium: a student's page on one replica (the viewer link, so the page is a
    student's) answers the question the teacher opened on another, and follows the run the
    teacher starts there; the answer is counted, and kept with the run, on the teacher's."""
    teacher = Server("--redis", redis_server.url, "--token", "replicas-teacher", env=HOLD_1S)
    student_side = Server("--redis", redis_server.url, "--token", "replicas-teacher",
                          env=HOLD_1S)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        httpx.delete(f"{teacher.url}/api/prediction", headers=teacher.headers)  # none left
        page = ctx.new_page()
        errors = PageErrors()
        errors.watch(page)
        page.goto(f"{student_side.url}/?token={student_side.links()['students']}")
        page.wait_for_function("window.procscope && procscope.follower.stream",
                               timeout=60_000)
        opened = httpx.post(f"{teacher.url}/api/prediction", json={"experiment": "join"},
                            headers=teacher.headers)
        assert opened.status_code == 201, opened.text
        page.fill("[data-testid=prediction-answer]", "2")  # waits for the box to show
        page.click("[data-testid=prediction-submit]")
        load.wait_for(lambda: httpx.get(f"{teacher.url}/api/prediction",
                                        headers=teacher.headers).json()["question"]["total"]
                      == 1, 30, lambda: "for the answer sent to B to count on A")
        screenshot(page, "replicas-student-answers-on-b")
        response = httpx.post(f"{teacher.url}/api/runs", headers=teacher.headers, json={
            "experiment": "join", "params": {"durations": [0.3], "time_scale": 1}})
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        page.wait_for_function(
            """id => procscope.panels.some(p => String(p.run.id) === id)
                     && location.pathname === '/runs/' + id""", arg=run_id, timeout=30_000)
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid=run-status]')]
                     .some(e => e.dataset.status === 'succeeded')""", timeout=60_000)
        result = page.locator("[data-testid=prediction-result]")
        result.wait_for()
        assert "1" in result.inner_text()
        screenshot(page, "replicas-student-follows-on-b")
        record = httpx.get(f"{teacher.url}/api/runs/{run_id}", headers=teacher.headers).json()
        assert record["prediction"]["answers"] == [[2, 1]]
        assert errors.messages == []
    finally:
        ctx.close()
        student_side.stop()
        teacher.stop()
