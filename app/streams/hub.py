"""The hub: each run's events as an append-only log that subscribers read with cursors.

Runs on the server's event loop. A subscriber is just the last seq it has sent plus a wait
for the log to grow: a slow client reads further behind, it never blocks the relay or
another client, and nothing is dropped. `Last-Event-ID` is the cursor, so a reconnect
resumes exactly where it left off.

The log is an interface (`RunLog`, `Hub`): append a batch, read after a seq, wait for
more, end (a run.end in a batch ends it), forget. Every implementation is a `FrameLog`,
which holds frames in memory and owns reading, waiting and ending: the in-memory log here,
app.history.sqlite_hub's (older frames on disk), app.cluster.redis_hub's (written through to
Redis, or read from it) and the classroom's news (app.classroom.classroom, bounded);
`tests/test_log_contract.py` is what every hub must pass. Nothing outside the hub reaches
into a log's storage.

A hub that outlives the server is also a `RunStore`: it keeps the run manager's records of
runs, so that a restarted server lists them as they were.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from procscope.pipe.events import Event, Format, ndjson_line

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

    def read(self, after: int, fmt: Format, max_bytes: int = READ_BYTES,
             upto: int | None = None) -> tuple[bytes, int]:
        """The events after seq `after`, encoded, up to about max_bytes and at most to seq
        `upto`; and the new cursor."""
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


class RunStore(Protocol):
    """Where the run manager's records of runs outlive the server (app.history.sqlite_hub)."""

    size: int  # the store's bytes on disk, as of its last write
    on_size: list[Callable[[int], None]]  # each told the size after each write (on the loop)

    def load_runs(self) -> list[dict[str, Any]]:
        """Every run's last saved record (app.live.runs.Run.record), in id order."""
        ...

    def next_run_id(self) -> int:
        """Higher than any id ever saved, forgotten runs' included."""
        ...

    def run_ids(self) -> list[str]:
        """The runs that have a log in the hub."""
        ...

    def save_run(self, record: dict[str, Any]) -> None:
        """Keep a run's record (written in order with its log's events)."""
        ...

    def lifecycle(self, run_id: str) -> list[dict[str, Any]]:
        """A run's lifecycle events (app.pipe.events.DECODED kinds), decoded, in seq order."""
        ...

    def last_t(self, run_id: str) -> float:
        """The `t` of a run's last event."""
        ...

    async def written(self) -> None:
        """Return once everything given so far is on disk."""
        ...

    def forgetting(self) -> bool:
        """A forget is still being done: the size is not yet true."""
        ...

    def status(self) -> dict[str, Any]:
        """For /api/status: where, how big, what is not yet written."""
        ...

    def close(self) -> None:
        ...


class FrameLog:
    """What every RunLog does the same way (the memory, SQLite, Redis and news logs): the
    frames of seqs `first` to len(self) in memory as the relay made them (app.pipe.events:
    encoded once, sent as they are, NDJSON a slice of each), the wait for more, the end.

    A subclass keeps the seqs before `first` elsewhere (SQLite: on disk) or lets them go
    (the classroom's news: the oldest past its bound); reads before `first` are its own.
    """

    def __init__(self, first: int = 1, ended: bool = False) -> None:
        self._frames: list[bytes] = []
        self._data_at = array("H")  # where each frame's JSON starts (its header is short)
        self._first = first  # the seq of self._frames[0]
        self._ended = ended
        self.forgotten = False  # dropped from its hub: its readers are done
        self._grew = asyncio.Event()

    @property
    def ended(self) -> bool:
        return self._ended

    def __len__(self) -> int:
        return self._first - 1 + len(self._frames)

    def append(self, events: Sequence[Event]) -> None:
        if not self.forgotten and events:
            self._hold(events)

    def _hold(self, events: Sequence[Event]) -> None:
        """Keep a batch in memory (its seqs follow on) and wake the waiters."""
        for event in events:
            self._frames.append(event.frame)
            self._data_at.append(event.data_at)
            if event.kind == "run.end":
                self._ended = True
        self.poke()

    def read(self, after: int, fmt: Format, max_bytes: int = READ_BYTES,
             upto: int | None = None) -> tuple[bytes, int]:
        """From memory: the frames after `after`, or after `first` - 1 if that is later."""
        start = max(0, after - self._first + 1)
        end, size, frames = start, 0, self._frames
        stop = len(frames) if upto is None else min(len(frames), upto - self._first + 1)
        while end < stop and size < max_bytes:
            size += len(frames[end])
            end += 1
        if fmt == "sse":
            chunk = b"".join(frames[start:end])
        else:
            data_at = self._data_at
            chunk = b"".join(ndjson_line(frames[i], data_at[i]) for i in range(start, end))
        return chunk, max(after, self._first - 1 + end)

    def done(self, cursor: int) -> bool:
        return self.forgotten or (self._ended and cursor >= len(self))

    def poke(self) -> None:
        grew, self._grew = self._grew, asyncio.Event()
        grew.set()

    async def wait(self, cursor: int) -> None:
        # One wait, not a loop until the log grows: a poke must wake the reader even when
        # nothing new came (the server is stopping, and a quiet run would otherwise keep
        # its streams waiting until they are cut off without a word). Readers look again.
        if cursor >= len(self) and not self._ended and not self.forgotten:
            await self._grew.wait()

    def forget(self) -> None:
        """Dropped from its hub: its readers are done, woken to see it."""
        self.forgotten = True
        self.poke()

    def _let_go(self, upto: int) -> None:
        """Drop the frames of seqs up to `upto` from memory (kept elsewhere, or not needed)."""
        drop = min(len(self._frames), upto - self._first + 1)
        if drop > 0:
            del self._frames[:drop]
            del self._data_at[:drop]
            self._first += drop

    def _start_at(self, seq: int) -> None:
        """Hold nothing, the next frame held being seq `seq`'s."""
        self._frames.clear()
        del self._data_at[:]
        self._first = seq


class MemoryLog(FrameLog):
    """A RunLog in this process's memory, forgotten with the server."""


L = TypeVar("L", bound=RunLog)


class LogsByRun(Generic[L]):
    """What every hub does the same way: its logs by run id, and appending to one."""

    def __init__(self) -> None:
        self._logs: dict[str, L] = {}

    def get(self, run_id: str) -> L | None:
        return self._logs.get(run_id)

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        log = self._logs.get(run_id)
        if log is not None:
            log.append(events)


class MemoryHub(LogsByRun[MemoryLog]):
    """A Hub of MemoryLogs: today's embedded default, forgotten with the server."""

    def open(self, run_id: str) -> MemoryLog:
        log = self._logs[run_id] = MemoryLog()
        return log

    def forget(self, run_id: str) -> None:
        log = self._logs.pop(run_id, None)
        if log is not None:
            log.poke()  # (not forget(): a reader replaying a finished run reads it to its end)
