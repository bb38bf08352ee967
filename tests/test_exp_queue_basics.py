"""queue_basics: Queue(maxsize) fills, put(timeout) raises Full, get_nowait raises Empty."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_tutorial_queue_of_three(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("queue_basics", start_method=start_method, time_scale=0.1)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["got"] == ["first", "second", "third", "fourth"]
    assert result["full_raised"] is True and result["empty_raised"] is True
    assert result["full_waited"] >= 0.09  # put(timeout=1 s * 0.1) really waited

    puts = out.kinds("queue.put")
    gets = out.kinds("queue.get")
    assert [e["data"]["item"] for e in puts] == ["first", "second", "third", "fourth"]
    assert [e["data"]["item"] for e in gets] == result["got"]  # FIFO
    # The depth climbs to maxsize, then falls back to 0.
    assert [e["data"]["depth"] for e in puts[:3]] == [1, 2, 3]
    assert [e["data"]["depth"] for e in gets[:3]] == [2, 1, 0]
    full = out.kinds("queue.full")
    assert full[-1]["data"]["raised"] == "queue.Full" and full[-1]["data"]["depth"] == 3
    # Full is raised after the third put and before the first get.
    assert puts[2]["seq"] < full[-1]["seq"] < gets[0]["seq"]
    empty = out.kinds("queue.empty")
    assert len(empty) == 1 and empty[0]["data"]["raised"] == "queue.Empty"
    assert empty[0]["seq"] > gets[-1]["seq"]


def test_unbounded_queue_never_fills(run_experiment: Any) -> None:
    out = run_experiment("queue_basics", maxsize=0, items=6, time_scale=0.1)
    assert out.run["status"] == "succeeded"
    assert out.result["full_raised"] is False and out.result["empty_raised"] is True
    assert len(out.result["got"]) == 6 and out.result["fifo"] is True
    assert max(e["data"]["depth"] for e in out.kinds("queue.put")) == 6
    assert not out.kinds("queue.full")


def test_bad_maxsize_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "queue_basics",
                                       "params": {"maxsize": -1}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "maxsize"
