"""The benchmark's cheap SSE viewers (bench/viewers.py) count exactly what a real SSE
client reads, and the probes time every tick: the fan-out figures rest on both.

A real server with the `flood` load generator, a real run, the viewers in their own
processes (one probe, two counters), and a third-party SSE client (httpx-sse) reading the
same stream as the reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from multiprocessing import resource_tracker
from typing import Any

import httpx
import pytest
from conftest import Server
from httpx_sse import connect_sse

from bench import viewers


@pytest.fixture(autouse=True)
def _no_resource_tracker() -> Iterator[None]:
    """The viewers are started from a spawn context, which starts multiprocessing's
    resource tracker for this pytest process (it would live until pytest exits, and the
    leftover check would take it for a run's process): stopped after the test. Python
    has no public call for it; `_stop` is the one its own tests use."""
    yield
    resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


def _reference(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    """The run's stream from its start to run.end, as httpx-sse parses it."""
    events = []
    with connect_sse(client, "GET", f"/api/runs/{run_id}/events", timeout=60) as source:
        for sse in source.iter_sse():
            if not sse.data:
                continue  # the retry frame: not an event
            event = json.loads(sse.data)
            assert sse.event == event["kind"] and sse.id == str(event["seq"])
            events.append(event)
            if event["kind"] == "run.end":
                break
    return events


def test_viewers_count_every_frame_a_real_client_reads_and_probes_time_each_tick(
        selftest_server: Server) -> None:
    watch = viewers.start("127.0.0.1", selftest_server.port, 3, probes=1,
                          counter_processes=2, limit=60)
    with httpx.Client(base_url=selftest_server.url, timeout=30) as client:
        r = client.post("/api/runs", json={"experiment": "flood", "params": {
            "processes": 2, "events": 300, "rate": 600}})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        watch.connect(f"/api/runs/{run_id}/events")
        assert watch.wait_ready(30) == 3
        marks = watch.mark()  # mid-run: what each process has read so far
        timed, counted = watch.results(60)
        events = _reference(client, run_id)
    ticks = [e for e in events if e["kind"] == "bench.tick"]
    assert len(ticks) == 600 and events[-1]["kind"] == "run.end"
    assert len(timed) == 1 and len(counted) == 2
    for result in timed + counted:
        assert result.ended
        assert result.frames == len(events)
        assert result.ticks == 600
        assert result.connected <= result.first <= result.last_tick <= result.last
    assert len(marks) == 3 and all(0 <= frames <= len(events) for _, frames in marks)
    probe = timed[0]
    assert len(probe.delays) == 600
    # every delay is a real one: after its emit, and within the run's few seconds
    assert all(0 < d < 10 for d in probe.delays)
    t0 = events[0]["data"]["t0_monotonic_ns"] / 1e9
    assert sorted(probe.emitted) == sorted(t0 + e["t"] for e in ticks)
