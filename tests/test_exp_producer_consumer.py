"""producer_consumer: the naive version hangs in q.get(); a sentinel or JoinableQueue ends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

FAST = {"time_scale": 0.05, "items": 3}


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_naive_consumer_hangs_in_get(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("producer_consumer", mode="naive", start_method=start_method,
                         **FAST)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["hung"] is True
    assert result["produced"] == result["consumed"] == 3
    assert result["exitcodes"] == {"producer-1": 0, "consumer-1": -15}

    hang = out.kinds("hang")
    assert len(hang) == 1 and hang[0]["data"]["waiting_for"] == ["consumer-1"]
    assert hang[0]["data"]["states"]["consumer-1"] == "S"  # asleep in get(), not working
    producer_exit = next(e for e in out.kinds("proc.exit") if e["proc"] == "producer-1")
    last_get = out.kinds("queue.get")[-1]
    # The producer is long gone and the last item eaten when the hang is declared...
    assert producer_exit["seq"] < hang[0]["seq"] and last_get["seq"] < hang[0]["seq"]
    assert hang[0]["t"] - last_get["t"] >= 0.05 + 0.15  # eating + hang_timeout (3 s * 0.05)
    assert any("q.get()" in text for text in out.prints())
    # ...and only then is the consumer terminated.
    consumer_exit = next(e for e in out.kinds("proc.exit") if e["proc"] == "consumer-1")
    assert consumer_exit["seq"] > hang[0]["seq"] and consumer_exit["data"]["exitcode"] == -15


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_sentinel_ends_cleanly(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("producer_consumer", mode="sentinel", producers=2, consumers=2,
                         start_method=start_method, **FAST)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["hung"] is False and not out.kinds("hang")
    assert result["produced"] == result["consumed"] == 6
    assert set(result["exitcodes"].values()) == {0}
    # One None per consumer, put after every real item; each consumer gets one and stops.
    puts = out.kinds("queue.put")
    nones = [e for e in puts if e["data"]["item"] is None]
    assert len(nones) == 2 and all(e["seq"] > max(p["seq"] for p in puts
                                                  if p["data"]["item"]) for e in nones)
    got_none = [e["proc"] for e in out.kinds("queue.get") if e["data"]["item"] is None]
    assert sorted(got_none) == ["consumer-1", "consumer-2"]


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_joinable_queue_with_daemon_consumers(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("producer_consumer", mode="joinable", producers=2, consumers=3,
                         start_method=start_method, **FAST)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["hung"] is False
    assert result["produced"] == result["consumed"] == 6
    assert sum(result["consumed_by"].values()) == 6
    roles = {e["proc"]: e["data"]["role"] for e in out.kinds("proc.start")}
    assert roles["producer-1"] == roles["producer-2"] == "producer"
    assert {roles[f"consumer-{n}"] for n in (1, 2, 3)} == {"daemon"}
    # Each producer's q.join() returns only after the last item was eaten.
    last_eaten = max(e["seq"] for e in out.kinds("print") if "吃" in e["data"]["text"])
    joins = [e for e in out.kinds("join.done") if e["data"].get("what") == "q.join()"]
    assert len(joins) == 2 and all(e["seq"] > last_eaten for e in joins)
    # The depth chart: every put and get carries the queue's depth.
    for e in out.kinds("queue.put") + out.kinds("queue.get"):
        assert isinstance(e["data"]["depth"], int) and e["data"]["depth"] >= 0
    # The daemon consumers die with the main's code, killed by SIGTERM.
    main_print = next(e for e in out.kinds("print") if e["data"]["text"] == "主")
    for n in (1, 2, 3):
        exit_ = next(e for e in out.kinds("proc.exit") if e["proc"] == f"consumer-{n}")
        assert exit_["data"]["exitcode"] == -15 and exit_["seq"] > main_print["seq"]


def test_bad_params_are_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "producer_consumer",
                                       "params": {"mode": "magic"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "mode"
    r = client.post("/api/runs", json={"experiment": "producer_consumer",
                                       "params": {"consumers": 0}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "consumers"
