"""Streaming a run's log to a client: SSE frames or NDJSON lines.

Runs in the server, one coroutine per connected client. Each subscriber sends every frame
that is ready in one chunk (at most ~64 KiB, at most one send per FLUSH_INTERVAL), so curl
still sees one `id:/event:/data:` frame per event while the server does one send per batch
(DESIGN.md, decision 11: a send costs ~32 µs per client, an event must not).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import anyio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from app.hub import RunLog

log = logging.getLogger("procscope.stream")

FLUSH_INTERVAL = 0.02  # seconds between two sends to one client, at most 50 sends/s
RETRY_MS = 2000

Reader = Callable[[RunLog, int], tuple[bytes, int]]


class EventStream(EventSourceResponse):
    """sse-starlette's response, with a client that stopped reading dropped quietly.

    Past send_timeout, sse-starlette raises SendTimeoutError out of the response, and
    uvicorn would log it as an application error with a traceback, once per stalled
    laptop in a class: one line at INFO says it better.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("dropped a client that stopped reading: %s", scope.get("client"))


class Streams:
    """Counts live streams against a cap, so that a crowd gets a clear 503, not a hang."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.live = 0

    def full(self) -> bool:
        return self.live >= self.cap


async def _watch_shutdown(log: RunLog, stopping: anyio.Event | asyncio.Event) -> None:
    await stopping.wait()
    log.poke()


async def _follow(log: RunLog, after: int, read: Reader, streams: Streams,
                  stopping: anyio.Event | asyncio.Event | None = None
                  ) -> AsyncIterator[bytes]:
    cursor = max(0, min(after, len(log)))
    last_send = 0.0
    streams.live += 1
    watcher = None
    if stopping is not None:
        watcher = asyncio.ensure_future(_watch_shutdown(log, stopping))
    try:
        while True:
            await log.wait(cursor)
            if stopping is not None and stopping.is_set():
                return
            wait = last_send + FLUSH_INTERVAL - time.monotonic()
            if wait > 0 and not log.ended:
                await asyncio.sleep(wait)  # let more events gather into this send
            chunk, cursor = read(log, cursor)
            if chunk:
                last_send = time.monotonic()
                yield chunk
            if log.done(cursor):
                return
    finally:
        streams.live -= 1
        if watcher is not None:
            watcher.cancel()


async def sse(log: RunLog, after: int, streams: Streams,
              stopping: anyio.Event) -> AsyncIterator[bytes]:
    """`retry:` first, then the frames after seq `after`, live, until run.end.

    If the server stops first, the last frame is a `server.stopping` event (no id: it is
    not part of the run's log, and a reconnect resumes after the last real event).
    """
    yield f"retry: {RETRY_MS}\n\n".encode()
    async for chunk in _follow(log, after, RunLog.read_sse, streams, stopping):
        yield chunk
    if stopping.is_set() and not log.ended:
        yield f"event: server.stopping\ndata: {_stopping_json()}\n\n".encode()


def _stopping_json() -> str:
    return json.dumps({"kind": "server.stopping", "data": {
        "detail": "the server is stopping; its runs are being cancelled"}})


async def ndjson(log: RunLog, after: int, streams: Streams,
                 stopping: asyncio.Event) -> AsyncIterator[bytes]:
    """The same events as JSON lines, until run.end (or a `server.stopping` line)."""
    async for chunk in _follow(log, after, RunLog.read_ndjson, streams, stopping):
        yield chunk
    if stopping.is_set() and not log.ended:
        yield _stopping_json().encode() + b"\n"
