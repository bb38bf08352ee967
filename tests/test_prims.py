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
    workers = {e["pid"] for e in events if e["kind"] == "proc.start"
               and e["data"]["role"] == "worker"}
    assert {e["pid"] for e in acquires} == workers
    # A lock.wait only where the acquire had to wait, and then its acquire says how long.
    waits = of(events, lock, "lock.wait")
    assert len([e for e in acquires if "waited" in e["data"]]) == len(waits)
    # The RLock: the outermost acquire and release only (each worker takes it twice).
    assert kinds(events, rlock) == {"obj.new": 1, "lock.acquire": 3, "lock.release": 3}


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


@pytest.mark.parametrize("method", METHODS)
def test_a_program_prints_and_exits_as_it_would_without_procscope(
        method: str, tmp_path: Path) -> None:
    without = plain(["every_prim.py", method])
    with_trace, _ = traced(["every_prim.py", method], tmp_path / "events.ndjson")
    assert without.returncode == 0, without.stderr
    assert (with_trace.stdout, with_trace.returncode) == (without.stdout, without.returncode)
    assert without.stderr == ""
    assert [line for line in with_trace.stderr.splitlines()
            if not line.startswith("procscope trace: ")] == []
