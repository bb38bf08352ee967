"""This replica's lease as it knows it, and its runs' events held back while it may be gone.

Runs in the server, on its event loop (app.cluster.cluster_runs). The lease
(app.cluster.redis_registry, LEASE_MS) is renewed every second; a replica that was stopped
past it (SIGSTOP, a long GC pause, a suspended laptop) may have had its live runs taken over
and ended by another. Redis refuses its writes to those runs (app.cluster.redis_fence), but
its own pages would still be shown what its relay read meanwhile, events that are in no
replica's log of the run. So once the lease may have lapsed by our own clock, a run's new
events wait here, unshown, until the next renewal says whose runs they are: ours, they go on
as usual; taken over, they are dropped. The same holds for what the log had before the stall
but had not sent yet: an owned log's readers wait for the renewal too
(app.cluster.redis_hub.RedisLog.wait).

The clock is conservative: `renewed(sent_at)` takes the time the renewal was *sent*, and
the lease in Redis expires no earlier than that plus its length; another replica claims a
run only after it has expired.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from procscope.pipe.events import Event


class Lease:
    """Whether this replica may still show its runs' events, and those held meanwhile."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.renewed_at = time.monotonic()
        self.stopping = False  # at shutdown nothing is held (the fence still guards Redis)
        self._held: dict[str, list[Sequence[Event]]] = {}
        self._renewal = asyncio.Event()

    def renewed(self, sent_at: float) -> None:
        self.renewed_at = max(self.renewed_at, sent_at)
        renewal, self._renewal = self._renewal, asyncio.Event()
        renewal.set()

    def stop(self) -> None:
        self.stopping = True
        self._renewal.set()

    async def renewal_or(self, other: asyncio.Event) -> None:
        """Return at the next renewal (or stop), or when `other` is set, whichever first."""
        waits = [asyncio.ensure_future(self._renewal.wait()),
                 asyncio.ensure_future(other.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def lapsed(self) -> bool:
        return not self.stopping and time.monotonic() - self.renewed_at >= self.seconds

    def hold(self, run_id: str, events: Sequence[Event]) -> bool:
        """Keep this batch back (True) if the lease may have lapsed, or the run's earlier
        batches are held (its order is kept)."""
        if run_id in self._held or self.lapsed():
            self._held.setdefault(run_id, []).append(events)
            return True
        return False

    def drop(self, run_id: str) -> int:
        """The run is another's: its held events go nowhere; how many there were."""
        return sum(len(batch) for batch in self._held.pop(run_id, []))

    def release(self) -> list[tuple[str, Sequence[Event]]]:
        """Everything held, in order per run, to be handled now."""
        out = [(run_id, batch) for run_id, batches in self._held.items() for batch in batches]
        self._held.clear()
        return out
