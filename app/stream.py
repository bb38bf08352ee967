"""Streaming a run's log to a client: SSE frames or NDJSON lines.

Runs in the server, one coroutine per connected client. Each subscriber sends every frame
that is ready in one chunk (at most ~64 KiB, at most one send per FLUSH_INTERVAL), so curl
still sees one `id:/event:/data:` frame per event while the server does one send per batch
(DESIGN.md, decision 11: a send costs ~32 µs per client, an event must not).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from app.hub import RunLog

FLUSH_INTERVAL = 0.02  # seconds between two sends to one client, at most 50 sends/s
RETRY_MS = 2000

Reader = Callable[[RunLog, int], tuple[bytes, int]]


async def _follow(log: RunLog, after: int, read: Reader) -> AsyncIterator[bytes]:
    cursor = max(0, min(after, len(log)))
    last_send = 0.0
    while True:
        await log.wait(cursor)
        wait = last_send + FLUSH_INTERVAL - time.monotonic()
        if wait > 0 and not log.ended:
            await asyncio.sleep(wait)  # let more events gather into this send
        chunk, cursor = read(log, cursor)
        if chunk:
            last_send = time.monotonic()
            yield chunk
        if log.done(cursor):
            return


async def sse(log: RunLog, after: int) -> AsyncIterator[bytes]:
    """`retry:` first, then the frames after seq `after`, live, until run.end."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    async for chunk in _follow(log, after, RunLog.read_sse):
        yield chunk


async def ndjson(log: RunLog, after: int) -> AsyncIterator[bytes]:
    """The same events as JSON lines, until run.end."""
    async for chunk in _follow(log, after, RunLog.read_ndjson):
        yield chunk
