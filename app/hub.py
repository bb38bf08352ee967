"""The hub: each run's events as an append-only log that subscribers read with cursors.

Runs on the server's event loop. A subscriber is just the last seq it has sent plus a wait
for the log to grow: a slow client reads further behind, it never blocks the relay or
another client, and nothing is dropped (DESIGN.md, decision 5). `Last-Event-ID` is the
cursor, so a reconnect resumes exactly where it left off.

Three operations make the log's interface (append a batch, read after a seq, wait for
more), so that an SQLite or Redis Streams log can stand in for this one later.
"""

from __future__ import annotations

import asyncio

from app.relay import Event


class RunLog:
    """One run's events, in seq order; `frames[i]` is the SSE frame of seq i+1."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.data_at: list[int] = []
        self.ended = False
        self._grew = asyncio.Event()

    def __len__(self) -> int:
        return len(self.frames)

    def append(self, events: list[Event]) -> None:
        for event in events:
            self.frames.append(event.frame)
            self.data_at.append(event.data_at)
            if event.kind == "run.end":
                self.ended = True
        self.poke()

    def read_sse(self, after: int, max_bytes: int = 1 << 16) -> tuple[bytes, int]:
        """The SSE frames after seq `after`, up to about max_bytes; and the new cursor."""
        end = after
        size = 0
        while end < len(self.frames) and size < max_bytes:
            size += len(self.frames[end])
            end += 1
        return b"".join(self.frames[after:end]), end

    def read_ndjson(self, after: int, max_bytes: int = 1 << 16) -> tuple[bytes, int]:
        """The same events as JSON lines."""
        end = after
        lines: list[bytes] = []
        size = 0
        while end < len(self.frames) and size < max_bytes:
            frame = self.frames[end]
            lines.append(frame[self.data_at[end]:-1])  # keep one of the two newlines
            size += len(frame)
            end += 1
        return b"".join(lines), end

    def done(self, cursor: int) -> bool:
        """True once the reader at `cursor` has everything, run.end included."""
        return self.ended and cursor >= len(self.frames)

    def poke(self) -> None:
        """Wake every waiter to look again (e.g. because the server is stopping)."""
        grew, self._grew = self._grew, asyncio.Event()
        grew.set()

    async def wait(self, cursor: int) -> None:
        """Return when there is something after `cursor`, the log has ended, or poke().

        One wait, not a loop until the log grows: a poke must wake the reader even when
        nothing new came (the server is stopping, and a quiet run would otherwise keep
        its streams waiting until they are cut off without a word). Readers look again.
        """
        if cursor >= len(self.frames) and not self.ended:
            await self._grew.wait()


class Hub:
    """All runs' logs, by run id."""

    def __init__(self) -> None:
        self.logs: dict[str, RunLog] = {}

    def open(self, run_id: str) -> RunLog:
        log = self.logs[run_id] = RunLog()
        return log

    def get(self, run_id: str) -> RunLog | None:
        return self.logs.get(run_id)

    def append(self, run_id: str, events: list[Event]) -> None:
        log = self.logs.get(run_id)
        if log is not None:
            log.append(events)
