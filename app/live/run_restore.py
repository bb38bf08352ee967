"""The runs of the history, as the last server left them, back in a starting server.

Runs in the server, on its event loop, once, as the run manager starts (with a RunStore,
app.history.sqlite_hub). A run its last server left live (killed with -9, say: its
processes died with it, by parent-death signal) is ended `interrupted`, through the relay
and the run's ledger rebuilt from its log, as any run is ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from procscope.live.run_lifecycle import apply_event
from procscope.live.run_record import Run
from procscope.pipe.ledger import FINAL, Ledger
from procscope.pipe.relay import Relay
from procscope.streams.hub import Hub, RunStore

log = logging.getLogger("procscope.live.run_restore")


def restore(store: RunStore, hub: Hub, relay: Relay,
            save: Callable[[Run], None]) -> tuple[list[Run], list[Run]]:
    """(every run of the history, as it was, in id order; those of them being ended now).

    A run whose record is final is finished; one whose log has its run.end is saved as
    its log says; any other is handed to the relay to end `interrupted` (its
    `finished` is set once its run.end reaches the manager).
    """
    runs = [Run.from_record(record) for record in store.load_runs()]
    known = {run.id for run in runs}
    for run_id in store.run_ids():
        if run_id not in known:  # a log whose run was never recorded: nobody saw it
            hub.forget(run_id)
    ending = []
    for run in runs:
        runlog = hub.get(run.id) or hub.open(run.id)
        if run.status in FINAL:
            run.finished.set()
            continue
        ending.append(run)
        # Its counters, result and error as the log says (the record is from its start).
        ledger = Ledger()
        t0_wall = None
        for event in store.lifecycle(run.id):
            apply_event(run, event["kind"], event)
            ledger.note(event["kind"], event, 0)
            if event["kind"] == "run.start":
                t0_wall = event["data"].get("t0_wall")
        run.events = len(runlog)
        if runlog.ended:  # its run.end was written, its last record was not
            save(run)
            run.finished.set()
            continue
        last_t = store.last_t(run.id)
        if t0_wall is not None:  # it ended, as far as anyone can tell, at its last event
            run.ended_at = datetime.fromtimestamp(t0_wall + last_t, UTC).isoformat(
                timespec="milliseconds")
        log.warning("run %s (%s) was live when the last server died: it ends interrupted",
                    run.id, run.experiment)
        relay.resume(run.id, len(runlog), time.monotonic_ns() - int(last_t * 1e9), ledger)
        relay.end(run.id, "interrupted", None)
    return runs, ending
