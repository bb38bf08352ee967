"""What a run's lifecycle events change in its record: counters, result, error, status.

Runs in the server, on its event loop: for each event as the relay delivers it (live), as
the history gives it back (a run left live by the last server), or as another replica
wrote it (--redis).
"""

from __future__ import annotations

from typing import Any

from procscope.live.run_record import Run, now
from procscope.pipe.events import Event
from procscope.pipe.ledger import error_of

# The kinds that change a run's record; any other kind leaves it as it is.
APPLIED = frozenset({"proc.start", "proc.exit", "run.result", "run.error", "run.end"})


def apply_event(run: Run, kind: str, event: Event | dict[str, Any]) -> None:
    """What one lifecycle event (of APPLIED) changes in the run's record (decoded only
    if needed)."""
    if kind == "proc.start":
        run.processes_started += 1
        run.processes_live += 1
    elif kind == "proc.exit":
        run.processes_live -= 1
    elif kind in ("run.result", "run.error", "run.end"):
        data = (event.obj if isinstance(event, Event) else event)["data"]
        if kind == "run.result":
            run.result = data["result"]
        elif kind == "run.error":
            run.error = error_of(data)
            run.error_zh = data.get("message_zh") or None
        else:
            run.status = data["status"]
            run.result = data["result"]
            run.error = data["error"]
            run.error_zh = data.get("error_zh")
            run.dropped = data["dropped"]
            run.exitcode = data["exitcode"]
            run.ended_at = run.ended_at or now()
