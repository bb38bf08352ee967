"""The hub: each run's events as an append-only log that subscribers read with cursors.

Runs on the server's event loop. A subscriber is just the last seq it has sent plus a wait
for the log to grow: a slow client reads further behind, it never blocks the relay or
another client, and nothing is dropped. `Last-Event-ID` is the cursor, so a reconnect
resumes exactly where it left off.

The log is an interface (`RunLog`, `Hub`): append a batch, read after a seq, wait for
more, end (a run.end in a batch ends it), forget. The in-memory log here is the first
implementation; `tests/test_log_contract.py` is what any other (SQLite, Redis Streams)
must pass too. Nothing outside the hub reaches into a log's storage.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Sequence
from typing import Protocol

from app.events import Event, Format, ndjson_line

READ_BYTES = 1 << 16  # one read hands a client about this much: one send of a batch


class RunLog(Protocol):
    """One run's events in seq order: seq N is the N-th event appended."""

    @property
    def ended(self) -> bool:
        """True once run.end is in the log: nothing can follow it."""
        ...

    def __len__(self) -> int:
        """The seq of the last event (0 for an empty log)."""
        ...

    def append(self, events: Sequence[Event]) -> None:
        """Add a batch of stamped events, whose seqs follow on from len(self)."""
        ...

    def read(self, after: int, fmt: Format, max_bytes: int = READ_BYTES) -> tuple[bytes, int]:
        """The events after seq `after`, encoded, up to about max_bytes; and the new cursor."""
        ...

    def done(self, cursor: int) -> bool:
        """True once a reader at `cursor` has everything, run.end included."""
        ...

    async def wait(self, cursor: int) -> None:
        """Return when there is something after `cursor`, the log has ended, or poke()."""
        ...

    def poke(self) -> None:
        """Wake every waiter to look again (e.g. because the server is stopping)."""
        ...


class Hub(Protocol):
    """All runs' logs, by run id."""

    def open(self, run_id: str) -> RunLog:
        """A new, empty log for a new run."""
        ...

    def get(self, run_id: str) -> RunLog | None:
        ...

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        """Append to a run's log; a forgotten run's events go nowhere."""
        ...

    def forget(self, run_id: str) -> None:
        """Drop a run's log and its events; its readers see a log that no longer grows."""
        ...


class MemoryLog:
    """A RunLog in this process's memory: each event's SSE frame, encoded once."""

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self._data_at = array("H")  # where each frame's JSON starts (its header is short)
        self._ended = False
        self._grew = asyncio.Event()

    @property
    def ended(self) -> bool:
        return self._ended

    def __len__(self) -> int:
        return len(self._frames)

    def append(self, events: Sequence[Event]) -> None:
        for event in events:
            self._frames.append(event.frame)
            self._data_at.append(event.data_at)
            if event.kind == "run.end":
                self._ended = True
        self.poke()

    def read(self, after: int, fmt: Format, max_bytes: int = READ_BYTES) -> tuple[bytes, int]:
        end = after
        size = 0
        frames = self._frames
        while end < len(frames) and size < max_bytes:
            size += len(frames[end])
            end += 1
        if fmt == "sse":
            return b"".join(frames[after:end]), end
        return b"".join(ndjson_line(frames[i], self._data_at[i])
                        for i in range(after, end)), end

    def done(self, cursor: int) -> bool:
        return self._ended and cursor >= len(self._frames)

    def poke(self) -> None:
        grew, self._grew = self._grew, asyncio.Event()
        grew.set()

    async def wait(self, cursor: int) -> None:
        # One wait, not a loop until the log grows: a poke must wake the reader even when
        # nothing new came (the server is stopping, and a quiet run would otherwise keep
        # its streams waiting until they are cut off without a word). Readers look again.
        if cursor >= len(self._frames) and not self._ended:
            await self._grew.wait()


class MemoryHub:
    """A Hub of MemoryLogs: today's embedded default, forgotten with the server."""

    def __init__(self) -> None:
        self._logs: dict[str, MemoryLog] = {}

    def open(self, run_id: str) -> MemoryLog:
        log = self._logs[run_id] = MemoryLog()
        return log

    def get(self, run_id: str) -> MemoryLog | None:
        return self._logs.get(run_id)

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        log = self._logs.get(run_id)
        if log is not None:
            log.append(events)

    def forget(self, run_id: str) -> None:
        log = self._logs.pop(run_id, None)
        if log is not None:
            log.poke()
