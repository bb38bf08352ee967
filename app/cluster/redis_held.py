"""Which runs' logs a replica holds in its memory: live ones, and finished ones for a while.

Runs in the server, on its event loop (app.cluster.redis_hub's logs). Every run's events are in
Redis; a replica's copy of a run is only there to feed its streams with one read per run.
A long-lived replica that kept the copy of every run it ever streamed would grow with each
one (a class a day, for months), so a finished run's copy is let go once nobody has asked
for it for `hold` seconds, and read from Redis again by whoever asks next.

    held       a live run (never let go), or a finished one asked for within `hold` s
    let go     dropped from here; a stream still reading it keeps it alive (a weak
               reference finds it for the next client too, so there is never a second copy),
               and it is freed when that stream ends
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

# How long a finished run's copy stays after it was last asked for. PROCSCOPE_REDIS_HOLD_SECONDS
# sets it (the tests use a short one).
HOLD_SECONDS = float(os.environ.get("PROCSCOPE_REDIS_HOLD_SECONDS", "30"))


class HeldLog(Protocol):
    @property
    def ended(self) -> bool: ...

    def __len__(self) -> int: ...


L = TypeVar("L", bound=HeldLog)


class HeldLogs(Generic[L]):
    """Run id -> this replica's copy of its log, and when it was last asked for."""

    def __init__(self, hold: float = HOLD_SECONDS) -> None:
        self.hold = hold
        self._held: dict[str, L] = {}
        self._used: dict[str, float] = {}
        self._alive: weakref.WeakValueDictionary[str, L] = weakref.WeakValueDictionary()

    def get(self, run_id: str) -> L | None:
        """The copy, held again for `hold` seconds (also one that was let go but that a
        stream still reads)."""
        log = self._held.get(run_id)
        if log is None:  # (not `or`: an empty log is falsy)
            log = self._alive.get(run_id)
        if log is not None:
            self._held[run_id] = log
            self._used[run_id] = time.monotonic()
        return log

    def put(self, run_id: str, log: L) -> None:
        self._held[run_id] = self._alive[run_id] = log
        self._used[run_id] = time.monotonic()

    def pop(self, run_id: str) -> L | None:
        self._used.pop(run_id, None)
        self._held.pop(run_id, None)
        return self._alive.pop(run_id, None)

    def let_go(self, keep: set[str] | None = None) -> list[str]:
        """Drop the finished copies not asked for within `hold` seconds (but those in
        `keep`); the run ids let go."""
        now = time.monotonic()
        gone = [run_id for run_id, log in self._held.items()
                if log.ended and now - self._used[run_id] > self.hold
                and (keep is None or run_id not in keep)]
        for run_id in gone:
            del self._held[run_id], self._used[run_id]
        return gone

    def __iter__(self) -> Iterator[L]:
        """Every copy in memory: held, or let go and still read by a stream."""
        return iter(list(self._alive.values()))

    def __len__(self) -> int:
        return len(self._alive)
