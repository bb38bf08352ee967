"""pool_apply: apply is serial, apply_async runs `processes` tasks at a time, on few pids."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from conftest import kill_first_task_worker

START_METHODS = ["fork", "spawn"]


def pool_pids(out: Any) -> set[int]:
    """The pool's worker processes (ForkPoolWorker-1:3, SpawnPoolWorker-1:1, ...)."""
    return {e["pid"] for e in out.kinds("proc.start") if "PoolWorker" in e["proc"]}


@pytest.mark.parametrize("start_method", START_METHODS)
def test_apply_is_serial(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("pool_apply", mode="apply", processes=2, tasks=4, task_seconds=1,
                         time_scale=0.1, start_method=start_method)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["results"] == ["ok"] * 4
    # One task at a time: the total is the sum of the tasks.
    assert result["max_concurrent"] == 1
    assert result["elapsed"] >= 0.95 * result["serial_estimate"]
    # The events say the same: each task ends before the next one starts.
    tasks = [(e["kind"], e["data"]["task"]) for e in out.events
             if e["kind"] in ("task.start", "task.end")]
    assert tasks == [(kind, i) for i in range(4) for kind in ("task.start", "task.end")]
    assert out.peak("task.start", "task.end") == 1
    # Only the pool's processes run tasks, never the main.
    assert set(result["worker_pids"]) <= pool_pids(out)
    assert out.run["pid"] not in result["worker_pids"]


@pytest.mark.parametrize("start_method", START_METHODS)
def test_apply_async_runs_processes_at_a_time_on_reused_pids(run_experiment: Any,
                                                             start_method: str) -> None:
    out = run_experiment("pool_apply", mode="apply_async", processes=4, tasks=8,
                         task_seconds=2, time_scale=0.15, start_method=start_method)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["results"] == ["ok"] * 8
    assert result["elapsed"] < 0.6 * result["serial_estimate"]
    assert 2 <= result["max_concurrent"] <= 4
    assert 2 <= out.peak("task.start", "task.end") <= 4
    if start_method == "fork":  # the pool's workers all exist before the first task
        assert result["max_concurrent"] == 4
    # 8 tasks, at most 4 pids: the pool's processes are reused.
    pool = pool_pids(out)
    assert len(pool) == 4
    assert set(result["worker_pids"]) <= pool and len(result["task_pids"]) == 8
    task_pids = [e["pid"] for e in out.kinds("task.start")]
    assert len(task_pids) == 8 and len(set(task_pids)) <= 4
    assert sorted({e["data"]["task"] for e in out.kinds("task.end")}) == list(range(8))


def test_bad_param_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "pool_apply", "params": {"processes": 0}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "processes"
    r = client.post("/api/runs", json={"experiment": "pool_apply", "params": {"mode": "map"}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "mode"


@pytest.mark.parametrize("mode", ["apply", "apply_async"])
def test_a_worker_killed_mid_task_ends_the_run_saying_which_task_was_lost(
        client: httpx.Client, mode: str) -> None:
    """Issue 12: kill -9 of a pool worker in the middle of its task hung the run until the
    server's 300 s timeout (CPython's Pool never returns such a task), with no word of why."""
    run = client.post("/api/runs", json={"experiment": "pool_apply", "params": {
        "mode": mode, "processes": 2, "tasks": 4, "task_seconds": 30}}).json()
    started = time.monotonic()
    victim, data = kill_first_task_worker(client, run["id"])
    task = data.get("task")
    final = client.get(f"/api/runs/{run['id']}").json()
    assert time.monotonic() - started < 20  # seconds after the death, not 30 s or 300 s
    assert final["status"] == "failed"
    assert f"task {task} was lost: its pool worker (pid {victim}) died" in final["error"]
    assert "task" in final["outcome"]["text"] and "lost" in final["outcome"]["text"]
    zh = final["outcome_zh"]["text"]  # in Chinese on the Chinese page (issue 23)
    assert "丢失了" in zh and f"pid {victim}" in zh and "was lost" not in zh, zh
