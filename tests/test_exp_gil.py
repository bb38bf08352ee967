"""gil: CPU-bound threads take turns on one core, processes run on several at once."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from kernel_trace import KernelTrace
from plain_burn import overlaps, plain_pair, tracefs  # noqa: F401 (a fixture, by name)

PARAMS = dict(workers=2, work=1.0, time_scale=0.2)  # 0.2 CPU-seconds per worker
ROUNDS = 3  # runs beside the plain pair, the first to hold passes
ASLEEP = 0.05  # of the work window, a worker's most (its emits; threads: ~0.5)


def test_threads_take_turns(run_experiment: Any) -> None:
    out = run_experiment("gil", mode="threads", **PARAMS)
    assert out.run["status"] == "succeeded", out.run["error"]
    result = out.result
    assert result["per_worker_cpu"] and all(c >= 0.2 for c in result["per_worker_cpu"])
    # One GIL: 0.4 s of CPU take at least 0.4 s of wall time, whatever else runs.
    assert result["speedup"] < 1.3
    assert result["elapsed"] >= 0.9 * result["cpu_seconds"]
    # Both threads live in the main process, and make progress in turns: each needs
    # about twice its CPU time on the wall clock, and neither ends before the other
    # has started working.
    ends = out.kinds("task.end")
    assert {e["thread"] for e in ends} == {"thread-1", "thread-2"}
    assert {e["pid"] for e in ends} == {out.run["pid"]}
    assert len({e["tid"] for e in ends}) == 2
    assert all(e["data"]["wall"] >= 1.5 * e["data"]["cpu"] for e in ends)
    first_end = min(e["seq"] for e in ends)
    progressed = {e["thread"] for e in out.kinds("task.progress") if e["seq"] < first_end}
    assert progressed == {"thread-1", "thread-2"}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
@pytest.mark.usefixtures("tracefs")
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_processes_use_several_cores(run_experiment: Any, start_method: str) -> None:
    # Whatever else runs on this machine takes cores from the run: the claim is that the
    # lesson's processes are on two cores at once as much as two processes can be at that
    # moment, so the run is held to two plain processes burning beside it, both recorded by
    # the kernel (tests/plain_burn.py). Threads, one GIL, are never on two cores at once.
    seen = []
    for _ in range(ROUNDS):
        with KernelTrace() as kt, plain_pair() as pair:
            out = run_experiment("gil", mode="processes", start_method=start_method,
                                 **PARAMS)
        assert out.run["status"] == "succeeded", out.run["error"]
        seen.append(overlaps(kt, out.events, pair))
        print(seen[-1])
        # Neither worker ever waits for the other, only for a core, however busy the
        # cores: threads sleep about half their window waiting for the GIL.
        assert max(seen[-1].asleep) < ASLEEP, seen[-1]
        if seen[-1].holds():
            break
    assert seen[-1].holds(), [str(s) for s in seen]
    # Two worker processes, each with its own pid (and its own GIL).
    ends = out.kinds("task.end")
    assert {e["proc"] for e in ends} == {"worker-1", "worker-2"}
    assert len({e["pid"] for e in ends}) == 2 and out.run["pid"] not in {e["pid"] for e in ends}


def test_bad_param_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "gil", "params": {"work": 0}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "work"
