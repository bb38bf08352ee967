"""Issue 25, a class joins a live lesson: viewers that open a running run from its start
(the page does: seq 0) or reconnect with Last-Event-ID are served its backlog together,
from shared cells (app.streams.fanout.Backlog), then with the live group.

With `--replicas N --redis URL` the same on every replica: a viewer on a replica that does not
own the run is served from that replica's one copy of the log (one reader of Redis per run
per replica, app.cluster.redis_hub), in shared cells, not by a read of Redis of its own.

What a student sees: every event of the run once, in seq order, the same bytes as the
finished run's replay (after the Last-Event-ID for a reconnect); what the server says in
/api/status: the joiners caught up and `joined` the live group while the run was still
live, and the backlog's cells were read from the log about once and sent to every viewer
(`cells_read`, `cells_sent`), not read once per viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import ROOT, Server, free_port
from redis_server import RedisServer, redis_server
from test_fanout import RETRY, frames_of, read_body, start_flood

from procscope.cluster.redis_hub import CHUNK
from procscope.streams.fanout import CELL

__all__ = ["redis_server"]  # the fixture, imported for pytest

LIMIT = 90  # seconds a test here may take, at most
JOINERS = 24  # from seq 0, as the page opens a run
RECONNECTS = 6  # with Last-Event-ID, as an EventSource resumes


@pytest.fixture(scope="module")
def flood_server() -> Iterator[Server]:
    srv = Server(env={"PROCSCOPE_SELFTEST": "1"})
    yield srv
    srv.stop()


def fanout_status(client: httpx.Client) -> dict[str, Any]:
    status: dict[str, Any] = client.get("/api/status").json()
    return status


@dataclass
class Joined:
    """What one server's viewers read, and its /api/status `fanout` around their join."""

    bodies: list[bytes]  # from seq 0
    resumed: list[bytes]  # with Last-Event-ID
    before: dict[str, int]  # the counters before they came
    joined: dict[str, int]  # ... once every one had joined the live group
    events: int  # the run's events as the server counted them then (or a little later)

    def cells(self) -> tuple[int, int]:
        """The backlog's cells (read from the log, sent to viewers) over their join."""
        return (self.joined["cells_read"] - self.before["cells_read"],
                self.joined["cells_sent"] - self.before["cells_sent"])


async def join_mid_run(urls: list[str], run_id: str, backlog: int,
                       resume_after: int) -> list[Joined]:
    """Once the run's log holds more than `backlog` events (as the first server counts),
    JOINERS viewers from seq 0 and RECONNECTS resuming after `resume_after` on each server;
    wait until each server's /api/status says its own all joined the live group while the
    run is live, then cancel the run; every body to its end, by server."""
    path = f"/api/runs/{run_id}/events"
    each = JOINERS + RECONNECTS
    limits = httpx.Limits(max_connections=each + 8)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(asyncio.timeout(LIMIT))
        clients = [await stack.enter_async_context(httpx.AsyncClient(
            base_url=url, timeout=LIMIT, limits=limits)) for url in urls]
        first = clients[0]
        deadline = time.monotonic() + LIMIT / 2
        while (await first.get(f"/api/runs/{run_id}")).json()["events"] <= backlog:
            assert time.monotonic() < deadline, "the run did not reach its backlog"
            await asyncio.sleep(0.05)
        befores = [(await c.get("/api/status")).json()["fanout"] for c in clients]
        started = [asyncio.Event() for _ in range(each * len(clients))]
        bodies, resumed = [], []
        for k, client in enumerate(clients):
            ours = started[k * each:(k + 1) * each]
            bodies.append([asyncio.ensure_future(read_body(client, path, ours[i]))
                           for i in range(JOINERS)])
            resumed.append([asyncio.ensure_future(read_body(
                client, path, ours[JOINERS + i],
                headers={"Last-Event-ID": str(resume_after)})) for i in range(RECONNECTS)])
        for event in started:
            await event.wait()
        # The joiners have caught up once each server counts its own joined, with the run live.
        joined = []
        for client, before in zip(clients, befores, strict=True):
            while True:
                status = (await client.get("/api/status")).json()
                fanout = status["fanout"]
                assert status["runs_live"] == 1, \
                    f"the run ended before the joiners caught up on {client.base_url}: {fanout}"
                if fanout["joined"] - before["joined"] >= each:
                    break
                assert time.monotonic() < deadline, \
                    f"the joiners never caught up on {client.base_url}: {fanout}"
                await asyncio.sleep(0.02)
            events = (await client.get(f"/api/runs/{run_id}")).json()["events"]
            joined.append((fanout, events))
        # (cancelled through the client used last: another's idle keep-alive connection
        # may be closed by its server just as it is reused)
        cancelled = await clients[-1].delete(f"/api/runs/{run_id}")
        assert cancelled.json()["status"] == "cancelled"
        return [Joined(list(await asyncio.gather(*b)), list(await asyncio.gather(*r)),
                       before, after, events)
                for b, r, before, (after, events) in zip(bodies, resumed, befores, joined,
                                                         strict=True)]


def check_joined(url: str, run_id: str, joined: Joined, resume_after: int) -> None:
    """Every joiner's body is the finished run's replay on `url`, every reconnect's its tail
    after `resume_after`; each cell of the backlog (> 5 cells) was read from the log about
    once for all the viewers that passed it, not once per viewer."""
    replay = httpx.get(f"{url}/api/runs/{run_id}/events", timeout=30).content
    frames = frames_of(replay)
    assert b"event: run.end\n" in frames[-1]
    assert len(frames) > 1500
    for body in joined.bodies:
        assert body == replay  # retry first, every frame once, in order, the same bytes
    tail = RETRY + b"".join(frames[resume_after:])
    for body in joined.resumed:
        assert body == tail  # resumed after it: nothing before it, nothing twice
    read, sent = joined.cells()
    assert sent >= JOINERS * 5, (url, joined.joined)
    # At most the cells of the log they passed, not a number per viewer (the longer the
    # class takes to connect, the longer the backlog: on a busy machine it can be more cells
    # than viewers, each still read once). Beyond the grid's cells: the reconnects' first
    # one (701 to 768) and the log's end; a replica whose copy is still being read from
    # Redis reads the cell at its copy's end again for each batch its reader brings in (a
    # group of viewers each time, the joiners' and the reconnects').
    grid = joined.events // CELL + 2
    assert read <= grid + 2 * (joined.events // CHUNK + 1), (url, joined.events, joined.joined)


def test_a_class_opening_a_running_lesson_from_its_start_gets_every_event_once_then_live(
        flood_server: Server) -> None:
    # ~1,200 events/s for ~20 s unless cancelled (the test cancels once all have joined);
    # the class opens the run once its log holds a few cells' worth.
    run_id = start_flood(flood_server.url, processes=4, events=6000, rate=300)
    [joined] = asyncio.run(join_mid_run([flood_server.url], run_id, backlog=1500,
                                        resume_after=701))
    check_joined(flood_server.url, run_id, joined, resume_after=701)


def test_status_counts_viewers_served_together(flood_server: Server) -> None:
    with httpx.Client(base_url=flood_server.url, timeout=30) as client:
        fanout = fanout_status(client)["fanout"]
    assert set(fanout) == {"viewers", "behind", "joined", "cells_read", "cells_sent"}
    assert fanout["viewers"] >= fanout["behind"] >= 0


def _two_free_ports() -> int:
    """A port P such that P and P + 1 are free (`--replicas 2` serves on both)."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


@pytest.fixture(scope="module")
def two_replicas(redis_server: RedisServer) -> Iterator[list[str]]:
    """`procscope --replicas 2 --redis URL`, as a user starts it: the replicas' URLs."""
    port = _two_free_ports()
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "procscope", "--replicas", "2", "--redis", redis_server.url,
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PROCSCOPE_SELFTEST": "1"}, start_new_session=True)
    urls = [f"http://127.0.0.1:{p}" for p in (port, port + 1)]
    try:
        for url in urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(url + "/api/status", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert supervisor.poll() is None, "the replicas did not start"
                    assert time.monotonic() < deadline, f"{url} never answered"
                    time.sleep(0.1)
        yield urls
    finally:
        supervisor.send_signal(signal.SIGTERM)  # it stops both replicas, and waits for them
        try:
            supervisor.wait(60)
        except subprocess.TimeoutExpired:
            supervisor.kill()  # hung past its own escalation: nothing else would end it
            supervisor.wait()


@pytest.mark.timeout(300)  # two replicas to start, beside the join's own LIMIT
def test_a_class_joining_from_its_start_on_two_replicas_is_served_together_on_each(
        two_replicas: list[str]) -> None:
    a, b = two_replicas  # the run is A's; B reads it from Redis
    # ~600 events/s (and the sampler's) for up to 80 s: the test cancels it once all have
    # joined; 60 readers in this one process keep up with it on a busy machine too.
    run_id = start_flood(a, processes=4, events=12000, rate=150)
    deadline = time.monotonic() + 10
    while httpx.get(f"{b}/api/runs/{run_id}", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "B never listed A's run"
        time.sleep(0.02)
    joined = asyncio.run(join_mid_run([a, b], run_id, backlog=1500, resume_after=701))
    for url, there in zip((a, b), joined, strict=True):
        # What each replica's students read is the run as its owner replays it, byte for
        # byte; each replica read the backlog's cells about once for all its viewers.
        check_joined(url, run_id, there, resume_after=701)
        assert httpx.get(f"{url}/api/runs/{run_id}/events", timeout=30).content == \
            httpx.get(f"{a}/api/runs/{run_id}/events", timeout=30).content
