"""pool_callback: pool workers fetch from the run's own HTTP server, the main parses."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from conftest import kill_first_task_worker


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_callbacks_run_in_the_main_process(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("pool_callback", processes=4, pages=5, parse_delay=0.5,
                         time_scale=0.1, start_method=start_method)
    assert out.run["status"] == "succeeded", out.run["error"]
    result = out.result
    main_pid = result["main_pid"]
    assert main_pid == out.run["pid"]
    # Every page was fetched and parsed, and every callback ran in the main.
    assert sorted(p["url"] for p in result["pages"]) == sorted(result["submitted"])
    assert all(p["size"] > 0 for p in result["pages"])
    assert result["callback_pids"] == [main_pid] * 5
    assert main_pid not in result["fetch_pids"]

    callbacks = out.kinds("callback")
    assert len(callbacks) == 5
    assert {e["pid"] for e in callbacks} == {main_pid}
    # ...in one thread of the main: the pool's result handler, not the main thread.
    assert len({e["tid"] for e in callbacks}) == 1
    # The fetches ran in pool workers, against the run's server; the parsing (a bar per
    # page, "parse PAGE") in the main, in the callbacks' thread.
    fetches = [e for e in out.kinds("task.start") if not e["data"]["label"].startswith("parse ")]
    fetch_pids = {e["pid"] for e in fetches}
    assert fetch_pids == set(result["fetch_pids"]) and main_pid not in fetch_pids
    parses = [e for e in out.kinds("task.start") if e["data"]["label"].startswith("parse ")]
    assert [(e["pid"], e["tid"], e["data"]["url"]) for e in parses] == [
        (main_pid, e["tid"], e["data"]["url"]) for e in callbacks]
    assert {e["proc"] for e in out.kinds("http.request")} == {"server"}
    assert len(out.kinds("http.request")) == 5
    # A page is parsed only after it was fetched; callbacks run one after another.
    ended = {e["data"]["url"]: e["t"] for e in out.kinds("task.end") if e["pid"] != main_pid}
    for e in callbacks:
        assert e["t"] >= ended[e["data"]["url"]]
    marks = [e["kind"] for e in out.events if e["kind"] in ("callback", "callback.done")]
    assert marks == ["callback", "callback.done"] * 5
    # The HTTP server was shut down before the main returned its result.
    server_exit = [e for e in out.kinds("proc.exit") if e["proc"] == "server"]
    assert len(server_exit) == 1 and server_exit[0]["data"]["exitcode"] == 0
    assert server_exit[0]["seq"] < out.kinds("run.result")[0]["seq"]


def test_callbacks_arrive_in_completion_order(run_experiment: Any) -> None:
    # The 'sites' answer after different delays: the callbacks follow the fetches'
    # completion, not the submission order.
    out = run_experiment("pool_callback", processes=5, pages=5, parse_delay=0,
                         time_scale=0.2)
    result = out.result
    parsed = [p["url"] for p in result["pages"]]
    assert parsed != result["submitted"]
    assert parsed == [e["data"]["url"] for e in out.kinds("callback")]


def test_bad_param_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "pool_callback",
                                       "params": {"pages": 1000}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "pages"


def test_a_worker_killed_mid_fetch_ends_the_run_saying_which_page_was_lost(
        client: httpx.Client) -> None:
    """Issue 12: kill -9 of a pool worker in the middle of its fetch hung the run until the
    server's 300 s timeout (CPython's Pool never returns such a task), with no word of why."""
    # time_scale=10: every fetch takes 3-14 s, so the worker is killed in the middle of it.
    run = client.post("/api/runs", json={"experiment": "pool_callback", "params": {
        "processes": 2, "pages": 4, "time_scale": 10}}).json()
    started = time.monotonic()
    victim, data = kill_first_task_worker(client, run["id"])
    url: str = data["url"]
    final = client.get(f"/api/runs/{run['id']}").json()
    assert victim is not None
    assert time.monotonic() - started < 20  # seconds after the death, not 300 s
    assert final["status"] == "failed"
    page = url.split("/", 3)[-1]
    assert f"page {page} was lost: its pool worker (pid {victim}) died" in final["error"]
    assert "lost" in final["outcome"]["text"]
    events = client.get(f"/api/runs/{run['id']}/events.ndjson").text.splitlines()
    lost = [json.loads(x) for x in events if '"task.lost"' in x]
    assert [(e["data"]["pid"], e["data"]["label"]) for e in lost] == [(victim, f"page {page}")]
    # The HTTP server was still shut down before the run ended.
    exits = [json.loads(x) for x in events if '"proc.exit"' in x]
    assert [e["data"]["exitcode"] for e in exits if e["proc"] == "server"] == [0]
