"""The first slice end to end: REST, SSE, the run lifecycle, against a real server."""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
from anyio._backends._asyncio import WorkerThread
from conftest import Frame, RunOutcome, Server, iter_sse, read_events
from machine_load import LoadMeter, load

__all__ = ["load"]  # the fixture, imported for pytest

RunExperiment = Callable[..., RunOutcome]


def test_experiments_are_listed_with_bounded_params(client: httpx.Client) -> None:
    listed = {e["id"]: e for e in client.get("/api/experiments").json()}
    assert {"join", "ticket_rush"} <= set(listed)
    n = listed["ticket_rush"]["params"]["properties"]["n"]
    assert (n["default"], n["minimum"], n["maximum"]) == (100, 1, 500)
    one = client.get("/api/experiments/ticket_rush").json()
    assert "Lock" in one["lesson"] and "lock.acquire()" in one["code"]
    assert client.get("/api/experiments/nope").status_code == 404


def test_ticket_rush_with_lock_sells_exactly_one(run_experiment: RunExperiment) -> None:
    out = run_experiment("ticket_rush", n=100, lock=True, time_scale=0.1)
    assert out.run["status"] == "succeeded"
    assert out.result["sold"] == 1 and out.result["remaining"] == 0
    buyers = set(out.result["buyers"])
    assert len(buyers) == 100
    started = {e["pid"] for e in out.kinds("proc.start") if e["proc"].startswith("buyer-")}
    exited = {e["pid"] for e in out.kinds("proc.exit") if e["proc"].startswith("buyer-")}
    assert started == buyers and exited == buyers
    assert [e["kind"] for e in (out.events[0], out.events[-1])] == ["run.start", "run.end"]
    # The lock is held by one buyer at a time: acquire/release strictly alternate.
    lock_events = [e["kind"] for e in out.events if e["kind"] in ("lock.acquire", "lock.release")]
    # A buyer whose unlocked search() caught the file mid-write dies before the lock
    # (the tutorial's code does too); every other buyer holds the lock once.
    holders = 100 - len(out.kinds("file.torn"))
    assert holders >= 95
    assert lock_events == ["lock.acquire", "lock.release"] * holders


def test_ticket_rush_without_lock_oversells(run_experiment: RunExperiment) -> None:
    out = run_experiment("ticket_rush", n=100, lock=False, time_scale=0.1)
    assert out.run["status"] == "succeeded"
    assert out.result["sold"] > 1
    assert out.result["oversold"] == out.result["sold"] - 1
    assert len(out.kinds("ticket.sold")) == out.result["sold"]
    assert not out.kinds("lock.acquire")


def test_join_takes_the_longest_not_the_sum(run_experiment: RunExperiment) -> None:
    out = run_experiment("join", durations=[2, 3, 5], time_scale=0.1)
    result = out.result
    assert (result["max"], result["sum"]) == (0.5, 1.0)
    assert result["max"] <= result["elapsed"] < result["sum"]
    # The main's prints come after all three workers are done.
    prints = out.prints()
    assert prints.index("主") > max(prints.index(f"{n}工作完毕") for n in ("alex", "egon", "qiji"))
    assert len(out.kinds("join.done")) == 3


def test_seq_has_no_gaps_and_run_end_is_last(run_experiment: RunExperiment) -> None:
    out = run_experiment("ticket_rush", n=20, time_scale=0.05)
    assert [e["seq"] for e in out.events] == list(range(1, len(out.events) + 1))
    assert out.events[-1]["kind"] == "run.end" and out.events[-1]["data"]["status"] == "succeeded"
    assert out.run["events"] == len(out.events)
    # One process's own events arrive in the order it wrote them (the kernel's view,
    # proc.state, cpu.run and thread.exit, is stamped by the server, not by the process).
    kernel_view = {"proc.state", "cpu.run", "thread.exit"}
    times = [e["t"] for e in out.events
             if e["pid"] == out.run["pid"] and e["kind"] not in kernel_view]
    assert times == sorted(times)


def test_reconnect_with_last_event_id_gets_exactly_the_rest(client: httpx.Client,
                                                            run_experiment: RunExperiment
                                                            ) -> None:
    out = run_experiment("join", durations=[0.5, 1], time_scale=0.1)
    run_id = out.run["id"]
    rest = read_events(client, run_id, headers={"Last-Event-ID": "5"})
    assert rest == out.events[5:]
    after = read_events(client, run_id, params={"after": 7})
    assert after == out.events[7:]
    ndjson = client.get(f"/api/runs/{run_id}/events.ndjson")
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in ndjson.text.splitlines()] == out.events


def test_sse_is_live_and_says_retry(client: httpx.Client) -> None:
    run = client.post("/api/runs", json={"experiment": "join",
                                         "params": {"durations": [1], "time_scale": 1}}).json()
    assert run["links"]["events"] == f"/api/runs/{run['id']}/events"
    seen_retry = False
    with client.stream("GET", run["links"]["events"]) as response:
        for frame in iter_sse(response):
            if isinstance(frame, str):
                seen_retry = frame.startswith("retry:")
                continue
            event = frame.json
            if event["kind"] == "print" and event["data"]["text"] == "alex开始工作":
                # The worker is sleeping its 1 s now: the run is visibly not over yet.
                assert client.get(f"/api/runs/{run['id']}").json()["status"] == "running"
            last = event
    assert seen_retry and last["kind"] == "run.end"


def temp_entries(server_pid: int) -> set[str]:
    """What this server's runs put in the temporary directory (their own directories,
    with multiprocessing's pymp-* dirs inside; other servers on the machine aside)."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"procscope-{server_pid}-*")))


def test_cancel_leaves_no_process_of_the_run(server: Server, client: httpx.Client,
                                             load: LoadMeter) -> None:
    temp_before = temp_entries(server.proc.pid)
    run = client.post("/api/runs", json={"experiment": "ticket_rush",
                                         "params": {"n": 30, "time_scale": 5}}).json()
    # Wait until all 30 buyers are running (an event, not a sleep).
    started = 0
    with client.stream("GET", run["links"]["events"]) as response:
        for frame in iter_sse(response):
            if isinstance(frame, Frame) and frame.event == "proc.start":
                started += 1
                if started == 31:
                    break
    pids = [p.pid for p in psutil.Process(run["pid"]).children(recursive=True)] + [run["pid"]]
    t0 = time.monotonic()
    final = client.delete(f"/api/runs/{run['id']}").json()
    assert final["status"] == "cancelled"
    load.since(t0).assert_within(3, "the cancel")
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    events = read_events(client, run["id"])
    assert events[-1]["kind"] == "run.end" and events[-1]["data"]["status"] == "cancelled"
    # Regression: killed buyers cannot remove the run's JSON "db"; the server removes the
    # run's temporary directory (and multiprocessing's pymp-* dirs in it) at the end.
    assert temp_entries(server.proc.pid) == temp_before


def test_bad_param_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "ticket_rush", "params": {"n": 5000}})
    assert r.status_code == 422
    assert any(err["loc"][-1] == "n" for err in r.json()["detail"])
    r = client.post("/api/runs", json={"experiment": "ticket_rush", "params": {"bogus": 1}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "bogus"
    r = client.post("/api/runs", json={"experiment": "nope", "params": {}})
    assert r.status_code == 422 and "ticket_rush" in r.text
    r = client.post("/api/runs", json={"experiment": "join",
                                       "params": {"start_method": "thread"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "start_method"


def test_failing_experiment_is_failed_with_traceback(selftest_server: Server) -> None:
    with httpx.Client(base_url=selftest_server.url, timeout=30) as c:
        run = c.post("/api/runs", json={"experiment": "fails", "params": {}}).json()
        events = read_events(c, run["id"])
        final = c.get(f"/api/runs/{run['id']}").json()
        assert final["status"] == "failed"
        assert "Traceback" in final["error"] and "ZeroDivisionError" in final["error"]
        assert events[-1]["data"]["status"] == "failed"
        # The server carries on: the next run succeeds.
        again = c.post("/api/runs", json={"experiment": "join",
                                          "params": {"durations": [0.1]}}).json()
        read_events(c, again["id"])
        assert c.get(f"/api/runs/{again['id']}").json()["status"] == "succeeded"


def server_threads(server: Server) -> set[int]:
    """The thread ids of the server process (/proc/PID/task)."""
    return {int(tid) for tid in os.listdir(f"/proc/{server.proc.pid}/task")}


def test_a_run_outlives_the_thread_that_served_its_post(server: Server, client: httpx.Client,
                                                        load: LoadMeter) -> None:
    """Regression: PR_SET_PDEATHSIG fires when the *thread* that started the run's main
    exits. POST /api/runs ran in anyio's worker threads, which exit after 10 s idle: a
    later burst of requests pruned that thread, and the run's main killed its group."""

    def burst() -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: client.get("/api/runs").status_code, range(16)))

    before = server_threads(server)
    # Long enough to be live when the workers are pruned (anyio's idle time and two
    # bursts later), short enough to end by itself: ended, it says it was never killed.
    run = client.post("/api/runs", json={"experiment": "join",
                                         "params": {"durations": [WorkerThread.MAX_IDLE_TIME
                                                                  + 6]}}).json()
    burst()
    workers = server_threads(server) - before  # the POST's and the burst's new ones
    # anyio prunes a worker thread that has been idle for MAX_IDLE_TIME when the next call
    # comes: no event of the server says so, the wait is for anyio's clock.
    time.sleep(WorkerThread.MAX_IDLE_TIME)
    burst()
    load.wait_for(lambda: not workers & server_threads(server), 5,
                  lambda: f"for anyio to prune its idle workers {workers}")
    assert client.get(f"/api/runs/{run['id']}").json()["status"] == "running"
    events = read_events(client, run["id"])
    assert events[-1]["kind"] == "run.end" and events[-1]["data"]["status"] == "succeeded"
    assert client.get(f"/api/runs/{run['id']}").json()["status"] == "succeeded"
