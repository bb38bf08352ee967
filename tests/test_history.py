"""Issue 14, items 1-2: the history in SQLite, and restarts that lose nothing.

Real servers on free loopback ports, each on a history file in pytest's tmp_path (never the
user's data directory): runs and their events survive SIGTERM and kill -9 byte for byte,
Last-Event-ID resumes across the restart, a run that was live when the server was killed
ends `interrupted` with nothing of it alive, a file that is not ours is refused and left
untouched, a finished run can be forgotten, and retention holds by count and by size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import ROOT, Server, alive, free_port, group_members, read_events, read_until

from procscope.history.history_db import HistoryError
from procscope.history.sqlite_hub import SqliteHub
from procscope.pipe.events import stamp
from procscope.web.main import viewer_token_for

pytestmark = pytest.mark.timeout(180)


def sse_bytes(c: httpx.Client, run_id: str, headers: dict[str, str] | None = None) -> bytes:
    """A finished run's whole SSE body (all of it comes at once: no ping in between)."""
    with c.stream("GET", f"/api/runs/{run_id}/events", headers=headers or {}) as response:
        assert response.status_code == 200
        return response.read()


def frames(body: bytes) -> list[bytes]:
    """The event frames of an SSE body (the retry frame left out), each with its bytes."""
    return [f + b"\n\n" for f in body.split(b"\n\n") if f.startswith(b"id: ")]


def start(c: httpx.Client, experiment: str, **params: Any) -> dict[str, Any]:
    r = c.post("/api/runs", json={"experiment": experiment, "params": params})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def wait_written(c: httpx.Client) -> None:
    """Until the server's writer has every event it was given on disk."""
    deadline = time.monotonic() + 20
    while c.get("/api/status").json()["history"]["unwritten_events"]:
        assert time.monotonic() < deadline, "the history writer did not catch up"
        time.sleep(0.02)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the log on its own ------------------------------------------------------------------


def test_a_log_read_back_from_disk_is_the_same_bytes_and_survives_reopening(
        tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite3")

    def made(seq: int, kind: str = "print") -> Any:
        body = json.dumps({"kind": kind, "pid": 1, "data": {"text": "é" * (seq % 7)}})
        return stamp("1", seq, seq / 1000, kind, body.encode())

    events = [made(seq) for seq in range(1, 3000)] + [made(3000, "run.end")]

    async def write() -> tuple[bytes, bytes]:
        hub = SqliteHub(path)
        log = hub.open("1")
        for i in range(0, 3000, 250):
            log.append(events[i:i + 250])
        await hub.written()
        # Everything is on disk, so nothing of it is kept in memory: old runs cost no RAM.
        assert log._frames == [] and len(log) == 3000 and log.ended
        sse, ndjson = read_all(log, "sse"), read_all(log, "ndjson")
        hub.close()
        return sse, ndjson

    def read_all(log: Any, fmt: Any) -> bytes:
        out, cursor = b"", 0
        while not log.done(cursor):
            chunk, cursor = log.read(cursor, fmt)
            out += chunk
        return out

    sse, ndjson = asyncio.run(write())
    assert sse == b"".join(e.frame for e in events)
    assert ndjson == b"".join(e.ndjson for e in events)

    async def reopen() -> None:
        hub = SqliteHub(path)
        log = hub.get("1")
        assert log is not None and len(log) == 3000 and log.ended
        assert read_all(log, "sse") == sse
        await log.wait(1234)  # a stream's wait() fetches what follows off the loop...
        assert 1234 in log._ahead
        framed = log._ahead[1234]
        chunk, cursor = log.read(1234, "sse")  # ...and its read() finds it there,
        assert chunk == b"".join(e.frame for e in events[1234:cursor])
        assert log.read(1234, "sse") == (chunk, cursor)  # framed once for every reader
        assert log._ahead[1234] is framed
        hub.close()

    asyncio.run(reopen())


# --- restarts ----------------------------------------------------------------------------


def test_runs_and_events_survive_sigterm_byte_for_byte(tmp_path: Path) -> None:
    db = str(tmp_path / "history.sqlite3")
    srv = Server("--db", db)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            done = [start(c, "join", durations=[0.1, 0.2], time_scale=1),
                    start(c, "ticket_rush", n=10, lock=False, time_scale=0.05)]
            for run in done:
                assert read_events(c, run["id"])[-1]["kind"] == "run.end"
            live = start(c, "join", durations=[30])
            read_until(c, live["id"], lambda e: e["kind"] == "join.wait")
            before = {run["id"]: sse_bytes(c, run["id"]) for run in done}
    finally:
        srv.stop()  # SIGTERM: the live run is cancelled, as the server says on its streams
    srv = Server("--db", db)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            listed = c.get("/api/runs").json()
            assert [r["id"] for r in listed] == [live["id"], done[1]["id"], done[0]["id"]]
            assert listed[0]["status"] == "cancelled"
            for run in done:
                assert sse_bytes(c, run["id"]) == before[run["id"]]
                # Last-Event-ID across the restart: exactly the rest, the same bytes.
                rest = sse_bytes(c, run["id"], {"Last-Event-ID": "5"})
                assert frames(rest) == frames(before[run["id"]])[5:]
            # The JSON of each run is what the first server said, field for field.
            srv.stop()
            srv = Server("--db", db)
            assert httpx.get(srv.url + "/api/runs").json() == listed
            for run in listed:
                assert httpx.get(f"{srv.url}/api/runs/{run['id']}").json() == run
            # Ids go on from the last one: none is given twice.
            with httpx.Client(base_url=srv.url) as fresh:
                assert start(fresh, "join", durations=[0])["id"] == "4"
    finally:
        srv.stop()


def reap(pids: set[int]) -> None:
    """Collect the exit status of those of `pids` that were re-parented to pytest."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):  # not our child (yet), or reaped
            os.waitpid(pid, os.WNOHANG)


def test_a_run_live_at_kill_9_ends_interrupted_and_nothing_of_it_lives(tmp_path: Path) -> None:
    db = str(tmp_path / "history.sqlite3")
    srv = Server("--db", db)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            finished = start(c, "join", durations=[0.1])
            read_events(c, finished["id"])
            run = start(c, "join", durations=[30, 30, 30])
            seen = read_until(c, run["id"], lambda e: e["kind"] == "join.wait")
            wait_written(c)
            with c.stream("GET", f"/api/runs/{run['id']}/events.ndjson") as response:
                lines = []
                for line in response.iter_lines():
                    lines.append(line)
                    if json.loads(line)["seq"] == seen[-1]["seq"]:
                        break
            finished_sse = sse_bytes(c, finished["id"])
        pids = set(group_members(run["pid"]))
        assert len(pids) >= 4  # the main and its three workers
        everything = pids | {p.pid for p in psutil.Process(srv.proc.pid).children(recursive=True)}
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        # Parent-death signal: the run's processes go with the server.
        deadline = time.monotonic() + 5
        while alive(pids) and time.monotonic() < deadline:
            reap(everything)
            time.sleep(0.02)
        assert alive(pids) == [] and group_members(run["pid"]) == []
        while any(psutil.pid_exists(p) for p in everything) and time.monotonic() < deadline:
            reap(everything)
            time.sleep(0.02)
    finally:
        srv.stop()
    srv = Server("--db", db)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            after = c.get(f"/api/runs/{run['id']}").json()
            assert after["status"] == "interrupted" and after["outcome"]["bad"]
            assert after["started_at"] <= after["ended_at"]
            events = read_events(c, run["id"])
            end = events[-1]
            assert end["kind"] == "run.end" and end["data"]["status"] == "interrupted"
            assert "killed or crashed" in end["data"]["detail"]
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            assert after["events"] == len(events)
            # Every process it started has its proc.exit: unobserved, it died unseen.
            started = {e["pid"] for e in events if e["kind"] == "proc.start"}
            exited = {e["pid"]: e for e in events if e["kind"] == "proc.exit"}
            assert started and started == set(exited)
            assert all(exited[p]["data"]["source"] == "unobserved" for p in pids & started)
            assert all(exited[p]["seq"] > len(lines) for p in pids & started)
            # What was written before the kill replays as it was, and resumes after it.
            with c.stream("GET", f"/api/runs/{run['id']}/events.ndjson") as response:
                replay = list(response.iter_lines())
            assert replay[:len(lines)] == lines
            resumed = read_events(c, run["id"], headers={"Last-Event-ID": str(len(lines))})
            assert [e["seq"] for e in resumed] == list(range(len(lines) + 1, len(events) + 1))
            assert resumed == events[len(lines):]
            assert sse_bytes(c, finished["id"]) == finished_sse
            assert start(c, "join", durations=[0])["id"] == str(int(run["id"]) + 1)
    finally:
        srv.stop()


# --- files that are not ours ------------------------------------------------------------


def serve_on(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procscope", "--port", str(free_port()),
                           "--db", str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)


def a_real_history(path: Path) -> None:
    async def fill() -> None:
        hub = SqliteHub(str(path))
        log = hub.open("1")
        log.append([stamp("1", seq, 0.0, "print", b'{"kind":"print","data":{"text":"%s"}}'
                          % (b"x" * 200)) for seq in range(1, 5001)])
        await hub.written()
        hub.close()

    asyncio.run(fill())
    conn = sqlite3.connect(path)  # the WAL into the file, so that the file has it all
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.mark.parametrize("kind", ["text", "foreign_sqlite", "damaged_history"])
def test_a_file_that_is_not_a_history_of_ours_is_refused_and_left_as_it_was(
        tmp_path: Path, kind: str) -> None:
    db = tmp_path / "history.sqlite3"
    if kind == "text":
        db.write_text("my notes for Tuesday's class\n" * 100)
    elif kind == "foreign_sqlite":
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE grades (student TEXT, grade INTEGER)")
        conn.execute("INSERT INTO grades VALUES ('ann', 5)")
        conn.commit()
        conn.close()
    else:
        a_real_history(db)
        with open(db, "r+b") as f:  # a page in the middle of the events' tree, overwritten
            f.seek(4096 * 20)
            f.write(b"\xff" * 4096)
    before = digest(db), os.stat(db).st_mtime_ns
    out = serve_on(db)
    assert out.returncode != 0
    assert str(db) in out.stderr and "left as it is" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert (digest(db), os.stat(db).st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [db.name]


def test_a_history_in_use_by_another_server_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    hub = SqliteHub(str(db))
    try:
        with pytest.raises(HistoryError, match="another procscope server"):
            SqliteHub(str(db))
        out = serve_on(db)
        assert out.returncode != 0 and "another procscope server" in out.stderr
    finally:
        hub.close()


# --- forgetting and retention -----------------------------------------------------------


def test_a_teacher_forgets_a_finished_run_and_a_viewer_cannot(tmp_path: Path) -> None:
    db = str(tmp_path / "history.sqlite3")
    srv = Server("--db", db, "--token", "teacher-token")
    try:
        viewer = {"Authorization": f"Bearer {viewer_token_for('teacher-token')}"}
        with httpx.Client(base_url=srv.url, timeout=30, headers=srv.headers) as c:
            kept = start(c, "join", durations=[0])
            gone = start(c, "join", durations=[0])
            for run in (kept, gone):
                read_events(c, run["id"])
            live = start(c, "join", durations=[30])
            assert c.delete(f"/api/runs/{gone['id']}/history", headers=viewer).status_code == 403
            r = c.delete(f"/api/runs/{live['id']}/history")
            assert r.status_code == 409 and "cancel it first" in r.json()["detail"]
            # DELETE of the run itself stays "cancel": on a finished run it changes nothing.
            assert c.delete(f"/api/runs/{gone['id']}").json() == \
                c.get(f"/api/runs/{gone['id']}").json()
            assert c.delete(f"/api/runs/{gone['id']}/history").status_code == 204
            for path in ("", "/events", "/events.ndjson", "/history"):
                assert c.get(f"/api/runs/{gone['id']}{path}").status_code in (404, 405)
            assert c.delete(f"/api/runs/{gone['id']}/history").status_code == 404
            assert [r["id"] for r in c.get("/api/runs").json()] == [live["id"], kept["id"]]
            c.delete(f"/api/runs/{live['id']}")
        srv.stop()
        srv = Server("--db", db, "--token", "teacher-token")
        with httpx.Client(base_url=srv.url, timeout=30, headers=srv.headers) as c:
            assert [r["id"] for r in c.get("/api/runs").json()] == [live["id"], kept["id"]]
            assert c.get(f"/api/runs/{gone['id']}").status_code == 404
            assert start(c, "join", durations=[0])["id"] == str(int(live["id"]) + 1)
    finally:
        srv.stop()


def test_retention_keeps_the_newest_runs_by_count_and_by_size(tmp_path: Path) -> None:
    db = str(tmp_path / "history.sqlite3")
    srv = Server("--db", db, "--keep-runs", "2")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            ids = []
            for _ in range(3):
                ids.append(start(c, "join", durations=[0])["id"])
                read_events(c, ids[-1])
            assert [r["id"] for r in c.get("/api/runs").json()] == ids[:0:-1]
        srv.stop()
        # Fewer kept on the next start: the oldest go, from the file too.
        srv = Server("--db", db, "--keep-runs", "1")
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert [r["id"] for r in c.get("/api/runs").json()] == ids[2:]
            wait_written(c)
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        assert conn.execute("SELECT DISTINCT run FROM events").fetchall() == [(ids[2],)]
        conn.close()
    finally:
        srv.stop()
    cap_mb = 0.6
    srv = Server("--db", db, "--max-db-mb", str(cap_mb), env={"PROCSCOPE_SELFTEST": "1"})
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            floods = []
            for _ in range(3):  # each about 0.4 MB: two do not fit
                floods.append(start(c, "flood", processes=2, events=700, payload=100)["id"])
                read_events(c, floods[-1])
                deadline = time.monotonic() + 20
                while True:
                    history = c.get("/api/status").json()["history"]
                    if history["bytes"] <= cap_mb * 2**20 and not history["unwritten_events"]:
                        break
                    assert time.monotonic() < deadline, history
                    time.sleep(0.05)
            # The oldest finished went first, as often as needed; the newest is all there.
            assert [r["id"] for r in c.get("/api/runs").json()] == [floods[-1]]
            assert len(read_events(c, floods[-1])) > 1400
            assert history["bytes"] > 0.3 * 2**20
    finally:
        srv.stop()
