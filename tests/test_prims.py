"""multiprocessing's primitives under `procscope trace` (issue 26): what each reports.

Runs in the pytest process; every program is a real `python` (plain) or a real
`python -m procscope trace --json-file` (traced, no server), the way a user's shell starts
them, and the events asserted are the ones in that file, as a user would read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent / "data" / "prims"
METHODS = ["fork", "spawn"]
Events = list[dict[str, Any]]


def _env() -> dict[str, str]:
    # Block-buffered stdout, as for any program whose output goes to a pipe (test_trace).
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def plain(args: list[str], cwd: Path = DATA) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=_env())


def traced(args: list[str], out: Path,
           cwd: Path = DATA) -> tuple[subprocess.CompletedProcess[str], Events]:
    runtime = out.parent / "runtime"  # empty: no server to find
    runtime.mkdir(mode=0o700, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "procscope", "trace", "--json-file", str(out), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**_env(), "PROCSCOPE_RUNTIME_DIR": str(runtime)})
    events = [json.loads(line) for line in out.read_text().splitlines()]
    return result, events


def objects(events: Events) -> dict[str, dict[str, Any]]:
    """name -> the obj.new's data."""
    return {e["data"]["name"]: e["data"] for e in events if e["kind"] == "obj.new"}


def of(events: Events, obj: str, kind: str | None = None) -> Events:
    return [e for e in events if e["data"].get("obj") == obj
            and (kind is None or e["kind"] == kind)]


def kinds(events: Events, obj: str) -> Counter[str]:
    return Counter(e["kind"] for e in of(events, obj))


@pytest.fixture(scope="module", params=METHODS)
def every_prim(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Events]:
    method = request.param
    out = tmp_path_factory.mktemp(f"every-{method}") / "events.ndjson"
    result, events = traced(["every_prim.py", method], out)
    assert result.returncode == 0, result.stderr
    return method, events


def test_every_object_is_announced_once_by_the_name_the_program_gives_it(
        every_prim: tuple[str, Events]) -> None:
    _, events = every_prim
    news = [e for e in events if e["kind"] == "obj.new"]
    made = objects(events)
    assert {"lock", "rlock", "q", "pool"} <= set(made)
    assert made["lock"]["type"] == "Lock" and made["rlock"]["type"] == "RLock"
    assert made["q"]["type"] == "Queue" and made["pool"]["type"] == "Pool"
    assert made["lock"]["where"].startswith("every_prim.py:")
    # multiprocessing's own objects (the Queue's locks and pipe, the Pool's queues) are
    # not the program's: one obj.new per object the program made, in the main.
    assert len(news) == len(made) == len({e["data"]["obj"] for e in news})
    main_pid = next(e["pid"] for e in events if e["kind"] == "proc.start"
                    and e["data"]["role"] == "main")
    assert {e["pid"] for e in news} == {main_pid}


def test_a_lock_reports_each_holder_in_the_process_that_held_it(
        every_prim: tuple[str, Events]) -> None:
    _, events = every_prim
    made = objects(events)
    lock, rlock = made["lock"]["obj"], made["rlock"]["obj"]
    # Three workers, each once: acquired and released in the worker (pickled to it under
    # spawn, inherited under fork), never in the main.
    acquires = of(events, lock, "lock.acquire")
    assert len(acquires) == 3 and len(of(events, lock, "lock.release")) == 3
    holders = {e["pid"] for e in acquires}
    main = next(e["pid"] for e in events if e["kind"] == "proc.start"
                and e["data"]["role"] == "main")
    assert len(holders) == 3 and main not in holders
    # A lock.wait only where the acquire had to wait, and then its acquire says how long.
    waits = of(events, lock, "lock.wait")
    assert len([e for e in acquires if "waited" in e["data"]]) == len(waits)
    # The RLock: the outermost acquire and release only (each worker takes it twice; one
    # may have waited for another).
    rlock_kinds = kinds(events, rlock)
    assert (rlock_kinds["lock.acquire"], rlock_kinds["lock.release"]) == (3, 3)
    assert rlock_kinds["lock.wait"] == len([e for e in of(events, rlock, "lock.acquire")
                                            if "waited" in e["data"]])


def test_a_queue_reports_its_puts_and_gets_with_depth_and_item(
        every_prim: tuple[str, Events]) -> None:
    _, events = every_prim
    q = objects(events)["q"]["obj"]
    puts, gets = of(events, q, "queue.put"), of(events, q, "queue.get")
    assert sorted(e["data"]["item"] for e in puts) == ["0", "1", "2"]
    assert sorted(e["data"]["item"] for e in gets) == ["0", "1", "2"]
    assert all(isinstance(e["data"]["depth"], int) for e in puts + gets)
    # A get that found the queue empty waited: a wait span, named by the program's call.
    starts, ends = of(events, q, "wait.start"), of(events, q, "wait.end")
    assert len(starts) == len(ends)
    assert all(e["data"]["call"] == "q.get()" for e in starts + ends)


def test_a_pool_reports_every_task_from_submit_to_result(
        every_prim: tuple[str, Events]) -> None:
    method, events = every_prim
    pool = objects(events)["pool"]["obj"]
    tasks = [e for e in events if e["data"].get("pool") == pool]
    submits = [e for e in tasks if e["kind"] == "task.submit"]
    assert [e["data"]["mode"] for e in submits] == (
        ["map"] * 5 + ["apply"] + ["starmap"] * 2 + ["imap"] * 2 + ["imap_unordered"] * 2
        + ["apply_async", "map_async"])
    # Each started and ended in a pool worker, labelled with its item.
    workers = {e["pid"] for e in events if e["kind"] == "proc.start"
               and e["data"]["role"] == "pool"}
    for kind in ("task.start", "task.end"):
        done = [e for e in tasks if e["kind"] == kind]
        assert len(done) == len(submits) and {e["pid"] for e in done} <= workers
    labels = {e["data"]["label"] for e in tasks if e["kind"] == "task.start"}
    assert {"square(0)", "square(4)", "square(7)", "add(1, 2)", "add(5, 6)"} <= labels
    first_map = [e for e in tasks if e["kind"] == "task.start" and e["data"]["task"] == 1]
    assert sorted(e["data"]["index"] for e in first_map) == [0, 1, 2, 3, 4]
    # Handed over in the main: map, apply, starmap once; imap once per item; the async
    # ones at get().
    results = Counter(e["data"]["task"] for e in tasks if e["kind"] == "task.result")
    assert results == {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 1, 7: 1}


def test_semaphores_events_conditions_and_barriers_report_what_they_do(
        every_prim: tuple[str, Events]) -> None:
    _, events = every_prim
    made = objects(events)
    assert (made["sem"]["type"], made["sem"]["value"]) == ("Semaphore", 2)
    assert (made["bounded"]["type"], made["bounded"]["value"]) == ("BoundedSemaphore", 1)
    sem = of(events, made["sem"]["obj"])
    assert [(e["kind"], e["data"]["value"]) for e in sem if e["kind"] != "obj.new"] == [
        ("lock.acquire", 1), ("lock.release", 2)]
    assert kinds(events, made["bounded"]["obj"]) == {
        "obj.new": 1, "lock.acquire": 1, "lock.release": 1}
    ready = made["ready"]
    assert ready["type"] == "Event"
    assert [e["kind"] for e in of(events, ready["obj"])] == ["obj.new", "event.set",
                                                              "event.clear"]
    cond = made["cond"]
    assert cond["type"] == "Condition"
    assert [e["data"].get("all") for e in of(events, cond["obj"], "cond.notify")] == [True]
    # The main waited in cond.wait() until the child's notify_all().
    waited = of(events, cond["obj"], "wait.start")
    assert [e["data"]["call"] for e in waited] == ["cond.wait()"]
    # The Condition's own RLock is drawn as the condition's: `of` it, named so.
    lock = made["lock of cond"]
    assert (lock["type"], lock["of"]) == ("RLock", cond["obj"])
    assert kinds(events, lock["obj"])["lock.acquire"] >= 2
    barrier = made["barrier"]
    assert barrier["parties"] == 2
    passed = of(events, barrier["obj"], "barrier.pass")
    assert len(passed) == 2 and len({e["pid"] for e in passed}) == 2
    # One of the two arrived first and waited; the last one to arrive did not.
    assert len(of(events, barrier["obj"], "wait.start")) == 1


def test_a_pipe_reports_both_ends_and_the_bytes_sent(
        every_prim: tuple[str, Events]) -> None:
    _, events = every_prim
    made = objects(events)
    parent, child = made["parent_end"], made["child_end"]
    assert (parent["peer"], child["peer"]) == (child["obj"], parent["obj"])
    sent = of(events, child["obj"], "pipe.send")
    received = of(events, parent["obj"], "pipe.recv")
    assert len(sent) == len(received) == 1
    assert sent[0]["data"]["bytes"] == received[0]["data"]["bytes"] > 0
    assert sent[0]["pid"] != received[0]["pid"]
    # A recv() that found nothing to read waited (which one did is up to the machine:
    # test_a_recv_and_a_get_that_wait_are_wait_spans makes sure of one).
    waits = of(events, parent["obj"], "wait.start") + of(events, child["obj"], "wait.start")
    assert {e["data"]["call"] for e in waits} <= {"parent_end.recv()", "child_end.recv()"}


def test_a_joinable_queue_shared_values_and_a_manager_report_too(
        every_prim: tuple[str, Events]) -> None:
    _, events = every_prim
    made = objects(events)
    jq = made["jq"]["obj"]
    assert [e["data"]["unfinished"] for e in of(events, jq, "queue.task_done")] == [0]
    # A join() that found the task not done yet waited (the child may be done first).
    joins = of(events, jq, "join.wait")
    assert [e["data"]["what"] for e in joins] in ([], ["jq.join()"])
    assert len(of(events, jq, "join.done")) == len(joins)
    for name, kind in (("counter", "Value"), ("numbers", "Array")):
        assert made[name]["type"] == kind
        lock = made[f"lock of {name}"]
        assert lock["of"] == made[name]["obj"]
        holders = {e["pid"] for e in of(events, lock["obj"], "lock.acquire")}
        assert len(holders) >= 1
    assert made["manager"]["type"] == "Manager"
    d = made["d"]
    assert (d["type"], d["typeid"]) == ("Proxy", "dict")
    calls = of(events, d["obj"], "mgr.call")
    # The child's d["child"] = item, the main's dict(d) (its keys, then each item).
    assert "__setitem__" in {e["data"]["method"] for e in calls}
    assert len({e["pid"] for e in calls}) == 2
    assert all(e["data"]["waited"] >= 0 for e in calls)


def test_a_process_pool_executor_reports_submit_and_map(
        every_prim: tuple[str, Events]) -> None:
    _, events = every_prim
    executor = objects(events)["executor"]
    assert (executor["type"], executor["processes"]) == ("ProcessPoolExecutor", 2)
    tasks = [e for e in events if e["data"].get("pool") == executor["obj"]]
    assert [e["data"]["mode"] for e in tasks if e["kind"] == "task.submit"] == [
        "submit", "executor.map", "executor.map"]
    labels = sorted(e["data"]["label"] for e in tasks if e["kind"] == "task.start")
    assert labels == ["add(1, 10)", "add(2, 20)", "square(9)"]
    assert len([e for e in tasks if e["kind"] == "task.result"]) == 3


@pytest.mark.parametrize("method", METHODS)
def test_a_program_prints_and_exits_as_it_would_without_procscope(
        method: str, tmp_path: Path) -> None:
    without = plain(["every_prim.py", method])
    with_trace, _ = traced(["every_prim.py", method], tmp_path / "events.ndjson")
    assert without.returncode == 0, without.stderr
    assert with_trace.returncode == without.returncode
    # Lines in sorted order: the child's and the main's buffers reach the pipe in an order
    # no run repeats, with or without procscope.
    assert sorted(with_trace.stdout.splitlines()) == sorted(without.stdout.splitlines())
    assert without.stderr == ""
    assert [line for line in with_trace.stderr.splitlines()
            if not line.startswith("procscope trace: ")] == []


@pytest.mark.parametrize("method", METHODS)
def test_a_lock_used_from_threads_reports_each_thread(method: str, tmp_path: Path) -> None:
    result, events = traced(["odd_uses.py", method, "threads"], tmp_path / "e.ndjson")
    assert result.stdout == "threads: [0, 1, 2, 3]\n"
    lock = objects(events)["lock"]["obj"]
    assert sorted(e["thread"] for e in of(events, lock, "lock.acquire")) == [
        "t0", "t1", "t2", "t3"]


@pytest.mark.parametrize("method", METHODS)
def test_subclasses_keep_their_own_methods_and_report(method: str, tmp_path: Path) -> None:
    result, events = traced(["subclassed.py", method], tmp_path / "e.ndjson")
    assert result.stdout == "subclass: ('loud', 7) 1\n", result.stderr
    made = objects(events)
    assert (made["loud"]["type"], made["counting"]["type"]) == ("Queue", "Lock")
    # The subclass's put() ran (its item is the tuple it made), in the child it was
    # pickled to; the Lock subclass's holder there too.
    puts = of(events, made["loud"]["obj"], "queue.put")
    assert [e["data"]["item"] for e in puts] == ["('loud', 7)"]
    child = {e["pid"] for e in puts}
    acquires = of(events, made["counting"]["obj"], "lock.acquire")
    assert len(acquires) == 2 and child < {e["pid"] for e in acquires}


@pytest.mark.parametrize("method", METHODS)
def test_a_lock_handed_to_a_pool_initializer_reports_in_the_workers(
        method: str, tmp_path: Path) -> None:
    result, events = traced(["odd_uses.py", method, "initializer"], tmp_path / "e.ndjson")
    assert result.stdout == "initializer: [1, 2, 3, 4]\n", result.stderr
    guard = objects(events)["guard"]["obj"]
    workers = {e["pid"] for e in events if e["kind"] == "proc.start"
               and e["data"]["role"] == "pool"}
    acquires = of(events, guard, "lock.acquire")
    assert len(acquires) == 4 and {e["pid"] for e in acquires} <= workers


@pytest.mark.parametrize("method", METHODS)
def test_a_recv_and_a_get_that_wait_are_wait_spans(method: str, tmp_path: Path) -> None:
    result, events = traced(["odd_uses.py", method, "blocking"], tmp_path / "e.ndjson")
    assert result.stdout == "child got: ping\nchild got: job\n", result.stderr
    made = objects(events)
    for name, call, outcome in (("there", "there.recv()", "pipe.recv"),
                                ("items", "items.get()", "queue.get")):
        obj = made[name]["obj"]
        starts, ends = of(events, obj, "wait.start"), of(events, obj, "wait.end")
        assert [e["data"]["call"] for e in starts] == [call]
        assert [e["data"]["call"] for e in ends] == [call]
        assert ends[0]["data"]["waited"] > 0 and ends[0]["pid"] == starts[0]["pid"]
        # What it waited for came after the wait began.
        assert len(of(events, obj, outcome)) == 1
        assert of(events, obj, outcome)[0]["seq"] > starts[0]["seq"]


def test_timeouts_full_and_empty_are_reported_as_they_raise(tmp_path: Path) -> None:
    result, events = traced(["odd_uses.py", "fork", "giving_up"], tmp_path / "e.ndjson")
    assert result.stdout == ("acquire: False\nfull\nfull\nget: a\nempty\nwait: False\n")
    made = objects(events)
    held = made["held"]["obj"]
    timeouts = of(events, held, "lock.timeout")
    assert [e["data"]["timeout"] for e in timeouts] == [0.05]
    assert timeouts[0]["data"]["waited"] >= 0.05
    assert len(of(events, held, "lock.wait")) == 1
    one = made["one"]
    assert one["maxsize"] == 1
    # put(timeout=) waited, then raised; put_nowait() raised at once; get(timeout=) too.
    assert [e["data"]["raised"] for e in of(events, one["obj"], "queue.full")] == [
        "queue.Full", "queue.Full"]
    assert [e["data"]["raised"] for e in of(events, one["obj"], "queue.empty")] == [
        "queue.Empty"]
    outcomes = [e["data"].get("outcome") for e in of(events, one["obj"], "wait.end")]
    assert outcomes == ["queue.Full", "queue.Empty"]
    never = made["never"]["obj"]
    assert [e["data"].get("outcome") for e in of(events, never, "wait.end")] == ["timeout"]


def test_a_thread_pool_is_not_instrumented_and_works_as_before(tmp_path: Path) -> None:
    """Regression: Pool's patched imap passed its chunksize on as None to ThreadPool's (and
    a Manager's Pool's), whose own default is 1: CPython's test_imap failed."""
    result, events = traced(["odd_uses.py", "fork", "threadpool"], tmp_path / "e.ndjson")
    assert result.stdout == "threadpool: [1, 2] [3]\n", result.stderr
    assert objects(events) == {}


def test_past_the_budget_a_hot_lock_is_counted_not_sent(tmp_path: Path) -> None:
    result, events = traced(["odd_uses.py", "fork", "hot"], tmp_path / "e.ndjson")
    assert result.stdout == "hot: 20000\n"
    spin = objects(events)["spin"]["obj"]
    sent = len(of(events, spin, "lock.acquire"))
    tallies = of(events, spin, "prims.tally")
    counted = sum(e["data"]["kinds"].get("lock.acquire", 0) for e in tallies)
    # Every acquisition is either an event or in a tally, none in both.
    assert 0 < sent < 20000 and sent + counted == 20000
    assert all(e["data"]["since"] >= 0 for e in tallies)


def test_a_program_that_never_imports_multiprocessing_pays_for_none_of_it(
        tmp_path: Path) -> None:
    result, _ = traced(["odd_uses.py", "fork", "nothing"], tmp_path / "e.ndjson")
    loaded = set(json.loads(result.stdout))
    # None of the modules the program did not import, nor their instrumentation.
    assert loaded.isdisjoint({
        "multiprocessing.synchronize", "multiprocessing.queues", "multiprocessing.pool",
        "multiprocessing.managers", "multiprocessing.sharedctypes",
        "concurrent.futures.process", "procscope.pipe.prims.locks",
        "procscope.pipe.prims.queues", "procscope.pipe.prims.pools",
        "procscope.pipe.prims.shared"})


def test_a_lesson_whose_spec_asks_gets_the_events_and_the_built_in_ones_do_not() -> None:
    from procscope.experiments import EXPERIMENTS, load

    # The built-in lessons send their own lock.*, queue.*, task.* events: never twice.
    assert [e for e in EXPERIMENTS if load(e).instrument_prims] == []
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-m", "procscope", "run", "prims_selftest",
                          "--set", "start_method=spawn", "--json"], cwd=root,
                         capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL,
                         env={**_env(), "PROCSCOPE_SELFTEST_PRIMS": "1"})
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    made = objects(events)
    assert (made["lock"]["type"], made["results"]["type"]) == ("Lock", "Queue")
    assert len(of(events, made["lock"]["obj"], "lock.acquire")) == 3
    assert sorted(e["data"]["item"] for e in of(events, made["results"]["obj"],
                                                 "queue.get")) == ["0", "1", "4"]


def test_an_events_text_made_from_its_encoded_head_is_what_emit_would_write() -> None:
    # The hot operations send text (app.pipe.prims.encoded) where the rest send a dict:
    # the same fields must read the same, byte for byte, names with quotes and non-ASCII.
    from procscope.pipe.framing import data_json
    from procscope.pipe.prims import encoded

    head = encoded.head("12:3", call='q"ü.get()', waits_for="an item in q\n")
    assert head + ',"waited":' + encoded.number(1.5e-05) + "}" == data_json(
        {"obj": "12:3", "call": 'q"ü.get()', "waits_for": "an item in q\n", "waited": 1.5e-05})
    assert f'{encoded.head("1:2")},"depth":{encoded.number(None)},"item":' \
           f'{encoded.string("ä")}}}' == data_json({"obj": "1:2", "depth": None, "item": "ä"})


@pytest.mark.parametrize("method", ["fork"])
def test_an_imaps_results_carry_their_items_index_in_chunks_and_out_of_order(
        method: str, tmp_path: Path) -> None:
    # Regression: a chunked imap's task.result had the position it was handed over at, an
    # imap_unordered's no index at all.
    result, events = traced(["imap_chunks.py", method], tmp_path / "events.ndjson")
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain(["imap_chunks.py", method]).stdout
    handed: dict[int, list[int]] = {}
    for e in events:
        if e["kind"] == "task.result":
            handed.setdefault(e["data"]["task"], []).append(e["data"]["index"])
    assert list(handed) == [1, 2, 3]
    assert handed[1] == list(range(7))  # imap: in order
    assert sorted(handed[2]) == list(range(7)) and sorted(handed[3]) == [0, 1, 2]
