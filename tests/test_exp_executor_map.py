"""executor_map: tasks finish out of order, map hands the results back in input order."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


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
