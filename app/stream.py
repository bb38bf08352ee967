"""Streaming a run's log to a client: SSE frames or NDJSON lines.

Runs in the server, one coroutine per connected client. Each subscriber sends every frame
that is ready in one chunk (at most ~64 KiB, at most one send per FLUSH_INTERVAL), so curl
still sees one `id:/event:/data:` frame per event while the server does one send per batch
(a send costs sse-starlette ~32 µs per client; one per event would saturate a core at
~30k events/s).

Both formats stop on one signal, the app's `stopping` (set by app.main's server the moment
a stop is asked for): each stream then ends with a `server.stopping` line of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from app.events import RETRY_FRAME, Format, server_stopping
from app.hub import RunLog

log = logging.getLogger("procscope.stream")

FLUSH_INTERVAL = 0.02  # seconds between two sends to one client, at most 50 sends/s


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
        except RuntimeError as e:
            # The same client, when the kernel gave up on it first (TCP_USER_TIMEOUT is the
            # send timeout too, app.main): uvloop then refuses the last write on the closed
            # transport. Anything else is a real error.
            if "closed" not in str(e):
                raise
            log.info("dropped a client whose connection was closed: %s", scope.get("client"))


class Streams:
    """Counts live streams against a cap, so that a crowd gets a clear 503, not a hang."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.live = 0

    def full(self) -> bool:
        return self.live >= self.cap


async def _follow(log: RunLog, after: int, fmt: Format, streams: Streams,
                  stopping: asyncio.Event) -> AsyncIterator[bytes]:
    """The log's events after `after`, live, in sends of a batch each; then the stream
    says `server.stopping` if the server stopped first, and ends."""
    # Not clamped to what this log holds yet: a replica still catching up with the owner
    # (or a reconnect that outran the reader) waits for the events after `after` instead of
    # sending again the ones the client already has. Only a finished log clamps.
    cursor = max(0, min(after, len(log)) if log.ended else after)
    last_send = 0.0
    streams.live += 1
    watcher = asyncio.ensure_future(_poke_on(stopping, log))
    try:
        while True:
            await log.wait(cursor)
            if stopping.is_set():
                break
            wait = last_send + FLUSH_INTERVAL - time.monotonic()
            if wait > 0 and not log.ended:
                await asyncio.sleep(wait)  # let more events gather into this send
            chunk, cursor = log.read(cursor, fmt)
            if chunk:
                last_send = time.monotonic()
                yield chunk
            if log.done(cursor):
                return
    finally:
        streams.live -= 1
        watcher.cancel()
    if not log.ended:
        yield server_stopping(fmt)


async def _poke_on(stopping: asyncio.Event, log: RunLog) -> None:
    await stopping.wait()
    log.poke()


async def sse(log: RunLog, after: int, streams: Streams,
              stopping: asyncio.Event) -> AsyncIterator[bytes]:
    """`retry:` first, then the frames after seq `after`, live, until run.end.

    If the server stops first, the last frame is a `server.stopping` event (no id: it is
    not part of the run's log, and a reconnect resumes after the last real event).
    """
    yield RETRY_FRAME
    async for chunk in _follow(log, after, "sse", streams, stopping):
        yield chunk


async def ndjson(log: RunLog, after: int, streams: Streams,
                 stopping: asyncio.Event) -> AsyncIterator[bytes]:
    """The same events as JSON lines, until run.end (or a `server.stopping` line)."""
    async for chunk in _follow(log, after, "ndjson", streams, stopping):
        yield chunk
