"""Issue 25, a class joins a live lesson: viewers that open a running run from its start
(the page does: seq 0) or reconnect with Last-Event-ID are served its backlog together,
from shared cells (app.streams.fanout.Backlog), then with the live group.

What a student sees: every event of the run once, in seq order, the same bytes as the
finished run's replay (after the Last-Event-ID for a reconnect); what the server says in
/api/status: the joiners caught up and `joined` the live group while the run was still
live, and the backlog's cells were read from the log about once and sent to every viewer
(`cells_read`, `cells_sent`), not read once per viewer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Server
from test_fanout import RETRY, frames_of, read_body, start_flood

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


async def join_mid_run(url: str, run_id: str, backlog: int,
                       resume_after: int) -> tuple[list[bytes], list[bytes], dict[str, Any]]:
    """Once the run's log holds more than `backlog` events, JOINERS viewers from seq 0 and
    RECONNECTS resuming after `resume_after`; wait until /api/status says they all joined
    the live group while the run is live, then cancel the run; every body to its end."""
    path = f"/api/runs/{run_id}/events"
    limits = httpx.Limits(max_connections=JOINERS + RECONNECTS + 8)
    async with asyncio.timeout(LIMIT), httpx.AsyncClient(base_url=url, timeout=LIMIT,
                                                         limits=limits) as client:
        deadline = time.monotonic() + LIMIT / 2
        while (await client.get(f"/api/runs/{run_id}")).json()["events"] <= backlog:
            assert time.monotonic() < deadline, "the run did not reach its backlog"
            await asyncio.sleep(0.05)
        before = (await client.get("/api/status")).json()["fanout"]
        started = [asyncio.Event() for _ in range(JOINERS + RECONNECTS)]
        bodies = [asyncio.ensure_future(read_body(client, path, started[i]))
                  for i in range(JOINERS)]
        resumed = [asyncio.ensure_future(read_body(
            client, path, started[JOINERS + i], headers={"Last-Event-ID": str(resume_after)}))
            for i in range(RECONNECTS)]
        for event in started:
            await event.wait()
        # The joiners have caught up once the server counts them joined, with the run live.
        while True:
            status = (await client.get("/api/status")).json()
            fanout = status["fanout"]
            if fanout["joined"] - before["joined"] >= JOINERS + RECONNECTS:
                break
            assert status["runs_live"] == 1, f"the run ended before the joiners caught up: {fanout}"
            assert time.monotonic() < deadline, f"the joiners never caught up: {fanout}"
            await asyncio.sleep(0.02)
        assert status["runs_live"] == 1
        seen = {"before": before, "joined": fanout}
        cancelled = await client.delete(f"/api/runs/{run_id}")
        assert cancelled.json()["status"] == "cancelled"
        return list(await asyncio.gather(*bodies)), list(await asyncio.gather(*resumed)), seen


def test_a_class_opening_a_running_lesson_from_its_start_gets_every_event_once_then_live(
        flood_server: Server) -> None:
    # ~1,200 events/s for ~20 s unless cancelled (the test cancels once all have joined);
    # the class opens the run once its log holds a few cells' worth.
    run_id = start_flood(flood_server.url, processes=4, events=6000, rate=300)
    bodies, resumed, seen = asyncio.run(
        join_mid_run(flood_server.url, run_id, backlog=1500, resume_after=701))
    replay = httpx.get(f"{flood_server.url}/api/runs/{run_id}/events", timeout=30).content
    frames = frames_of(replay)
    assert b"event: run.end\n" in frames[-1]
    assert len(frames) > 1500
    for body in bodies:
        assert body == replay  # retry first, every frame once, in order, the same bytes
    tail = RETRY + b"".join(frames[701:])
    for body in resumed:
        assert body == tail  # resumed after 701: nothing before it, nothing twice
    # The backlog (> 5 cells) was read from the log about once, not once per viewer.
    before, joined = seen["before"], seen["joined"]
    sent = joined["cells_sent"] - before["cells_sent"]
    read = joined["cells_read"] - before["cells_read"]
    assert sent >= JOINERS * 5, joined
    assert read < JOINERS, joined


def test_status_counts_viewers_served_together(flood_server: Server) -> None:
    with httpx.Client(base_url=flood_server.url, timeout=30) as client:
        fanout = fanout_status(client)["fanout"]
    assert set(fanout) == {"viewers", "behind", "joined", "cells_read", "cells_sent"}
    assert fanout["viewers"] >= fanout["behind"] >= 0
