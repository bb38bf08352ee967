"""executor_map: tasks finish out of order, map hands the results back in input order."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from conftest import kill_first_task_worker


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_map_keeps_input_order(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("executor_map", workers=4, items=10, max_delay=3, time_scale=0.15,
                         start_method=start_method)
    assert out.run["status"] == "succeeded", out.run["error"]
    result = out.result
    assert result["results"] == [n ** 2 for n in range(10)]
    # The workers finished in another order...
    finished = [e["data"]["task"] for e in out.kinds("task.end")]
    assert sorted(finished) == list(range(10))
    assert finished != list(range(10))
    assert result["out_of_order"] and sorted(result["finish_order"]) == list(range(10))
    # ...and the main received them in input order, each only once it was done.
    handed = out.kinds("map.result")
    assert [e["data"]["task"] for e in handed] == list(range(10))
    assert [e["data"]["value"] for e in handed] == result["results"]
    end_seq = {e["data"]["task"]: e["seq"] for e in out.kinds("task.end")}
    assert all(e["seq"] > end_seq[e["data"]["task"]] for e in handed)
    # A result was held back: some item finished before an earlier one was handed over.
    assert any(end_seq[later] < handed[earlier]["seq"] - 1
               for earlier in range(10) for later in range(earlier + 1, 10))
    # The work ran in the executor's processes, not in the main.
    workers = {e["pid"] for e in out.kinds("task.start")}
    assert workers == set(result["worker_pids"]) and len(workers) <= 4
    assert out.run["pid"] not in workers


def test_bad_param_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "executor_map",
                                       "params": {"max_delay": -1}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "max_delay"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_worker_killed_mid_item_ends_the_run_saying_which_item_was_lost(
        client: httpx.Client, start_method: str) -> None:
    """Issue 12: kill -9 of an executor worker mid-item. ProcessPoolExecutor raises
    BrokenProcessPool (it does not hang as Pool does), but did not say which item was lost
    or which worker died."""
    run = client.post("/api/runs", json={"experiment": "executor_map", "params": {
        "workers": 2, "items": 4, "max_delay": 30, "start_method": start_method}}).json()
    started = time.monotonic()
    victim, data = kill_first_task_worker(client, run["id"])
    item = data.get("task")
    final = client.get(f"/api/runs/{run['id']}").json()
    assert victim is not None
    assert time.monotonic() - started < 9  # the shortest item sleeps 10 s
    assert final["status"] == "failed"
    assert (f"item {item} was lost: its worker (pid {victim}) died (killed by SIGKILL) in "
            f"the middle of it, and ProcessPoolExecutor raised BrokenProcessPool"
            in final["error"]), final["error"]
    assert "lost" in final["outcome"]["text"]
    # The Chinese page says it in Chinese (issue 23: it showed the English after 运行失败：).
    zh = final["outcome_zh"]["text"]
    assert "丢失了" in zh and f"pid {victim}" in zh and "被 SIGKILL 杀死" in zh, zh
    assert "was lost" not in zh and "every pending" not in zh, zh
    lost = [e for e in map(json.loads, client.get(
        f"/api/runs/{run['id']}/events.ndjson").text.splitlines()) if e["kind"] == "task.lost"]
    assert [(e["data"]["pid"], e["data"]["label"]) for e in lost] == [(victim, f"item {item}")]
