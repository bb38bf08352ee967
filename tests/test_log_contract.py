"""What every implementation of the log interface (app.streams.hub.Hub / RunLog) must do.

The in-memory log is the first implementation; a later one (SQLite, Redis Streams) is added
to IMPLEMENTATIONS and must pass the same tests unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer, redis_server

from procscope.cluster.redis_hub import RedisHub
from procscope.history.sqlite_hub import SqliteHub
from procscope.pipe.events import Event, stamp
from procscope.streams.hub import Hub, MemoryHub

# Each is given a directory of its own (for files, if it keeps any), and the test's
# redis-server (a real one, started for the session: tests/redis_server.py).
IMPLEMENTATIONS: dict[str, Callable[[Path, Callable[[], RedisServer]], Hub]] = {
    "memory": lambda _, __: MemoryHub(),
    "sqlite": lambda tmp, _: SqliteHub(str(tmp / "history.sqlite3")),
    # A namespace of its own per test: the tests share one redis-server.
    "redis": lambda tmp, server: RedisHub(server().url, namespace=f"test-{tmp.name}"),
}
__all__ = ["redis_server"]  # the fixture, imported for pytest


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hub]:
    made = IMPLEMENTATIONS[request.param](
        tmp_path, lambda: request.getfixturevalue("redis_server"))
    yield made
    close = getattr(made, "close", None)
    if close is not None:
        close()


def events(run_id: str, first: int, n: int, last_kind: str | None = None) -> list[Event]:
    out = []
    for seq in range(first, first + n):
        kind = last_kind if last_kind and seq == first + n - 1 else "print"
        body = json.dumps({"kind": kind, "pid": 1, "data": {"text": f"line {seq}"}}).encode()
        out.append(stamp(run_id, seq, seq / 10, kind, body))
    return out


def seqs_sse(chunk: bytes) -> list[int]:
    return [int(line[4:]) for line in chunk.decode().split("\n") if line.startswith("id: ")]


def seqs_ndjson(chunk: bytes) -> list[int]:
    return [json.loads(line)["seq"] for line in chunk.decode().splitlines()]


def test_read_after_a_seq_in_both_formats(hub: Hub) -> None:
    async def go() -> None:
        log = hub.open("1")
        assert len(log) == 0 and not log.ended
        log.append(events("1", 1, 5))
        assert len(log) == 5
        chunk, cursor = log.read(0, "sse")
        assert seqs_sse(chunk) == [1, 2, 3, 4, 5] and cursor == 5
        chunk, cursor = log.read(2, "ndjson")
        assert seqs_ndjson(chunk) == [3, 4, 5] and cursor == 5
        assert log.read(5, "sse") == (b"", 5)
        # The same bytes the stamped events carry, in either encoding.
        [third] = events("1", 3, 1)
        assert log.read(2, "sse")[0].startswith(third.frame)
        assert log.read(2, "ndjson")[0].startswith(third.ndjson)
    asyncio.run(go())


def test_a_read_is_bounded_and_the_cursor_resumes(hub: Hub) -> None:
    async def go() -> None:
        log = hub.open("1")
        log.append(events("1", 1, 100))
        got: list[int] = []
        cursor = 0
        for _ in range(100):
            chunk, cursor = log.read(cursor, "ndjson", max_bytes=500)
            assert len(chunk) < 500 + 200  # at most one event past the bound
            got += seqs_ndjson(chunk)
            if cursor == 100:
                break
        assert got == list(range(1, 101))
    asyncio.run(go())


def test_run_end_ends_the_log(hub: Hub) -> None:
    async def go() -> None:
        log = hub.open("1")
        log.append(events("1", 1, 3))
        assert not log.ended and not log.done(3)
        log.append(events("1", 4, 2, last_kind="run.end"))
        assert log.ended
        assert not log.done(4)
        assert log.done(5)
        await asyncio.wait_for(log.wait(5), 1)  # an ended log never makes a reader wait
    asyncio.run(go())


def test_wait_returns_when_the_log_grows_or_is_poked(hub: Hub) -> None:
    async def go() -> None:
        log = hub.open("1")
        log.append(events("1", 1, 1))
        await asyncio.wait_for(log.wait(0), 1)  # something after 0 already
        waiter = asyncio.ensure_future(log.wait(1))
        await asyncio.sleep(0)
        assert not waiter.done()
        hub.append("1", events("1", 2, 1))
        await asyncio.wait_for(waiter, 1)
        waiter = asyncio.ensure_future(log.wait(2))
        await asyncio.sleep(0)
        assert not waiter.done()
        log.poke()  # nothing new, but a reader must look again (the server is stopping)
        await asyncio.wait_for(waiter, 1)
        assert len(log) == 2
    asyncio.run(go())


def test_logs_are_per_run_and_forget_drops_one(hub: Hub) -> None:
    async def go() -> None:
        a = hub.open("a")
        b = hub.open("b")
        hub.append("a", events("a", 1, 2))
        hub.append("b", events("b", 1, 1))
        assert (len(a), len(b)) == (2, 1)
        assert hub.get("a") is a and hub.get("nope") is None
        waiter = asyncio.ensure_future(a.wait(2))
        await asyncio.sleep(0)
        hub.forget("a")
        await asyncio.wait_for(waiter, 1)  # its readers are woken, not left hanging
        assert hub.get("a") is None
        hub.append("a", events("a", 3, 1))  # a forgotten run's events go nowhere
        assert hub.get("a") is None
        assert len(hub.get("b") or []) == 1
    asyncio.run(go())
