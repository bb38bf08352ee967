"""Launching and finishing one run's processes: the run's main, its pipe, its directory.

Runs in the server (and in `procscope run`, which needs only this, the relay and the
runner). A run's processes, from first to last:

    launch(): pipe + spawn the experiment main (app.live.runner), relay.add(pipe)
    the relay reads EOF (every process holding the pipe has exited) ─► finish():
        make sure no process of the group is alive, reap the main and adopted orphans,
        relay.end() ─► app.pipe.ledger builds run.end, the last event

So run.end is only ever stamped once every process of the run is gone and the last event
is in the log. The server never forks: each run's main is spawned (a forked uvicorn
process would inherit its threads' locks and its sockets).
"""

from __future__ import annotations

import contextlib
import glob
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from procscope.kernel import procgroup
from procscope.live import runner
from procscope.pipe.events import reaped_by_server
from procscope.pipe.relay import Relay
from procscope.pipe.reporter import Channel

SPAWN = multiprocessing.get_context("spawn")
WORKDIR_PREFIX = "procscope-"


def launch(relay: Relay, run_id: str, experiment: str, params: dict[str, Any],
           max_events: int, *, start_data: dict[str, Any] | None = None,
           before_gate: Callable[[int, int], None] | None = None) -> tuple[BaseProcess, str]:
    """Start a run's main process with its event pipe followed by the relay.

    The main waits at a gate before it runs any lesson code: `before_gate(pid, t0_ns)` is
    called while it is still one thread with no child (the moment to start following it,
    e.g. with app.kernel.switches), then the gate opens. `start_data` is added to run.start.
    Returns the process and the run's temporary directory (finish() removes it).
    """
    if threading.current_thread() is not threading.main_thread():
        # PR_SET_PDEATHSIG fires when the *thread* that started the child exits: from a
        # thread-pool thread, a run would die with it (a bug we had; see the API's POST).
        raise RuntimeError("runs are started from the main thread only")
    read_fd, channel = Channel.open()
    t0 = time.monotonic_ns()
    # t0 in both clocks, so that a client on this machine (CLOCK_MONOTONIC is system-wide)
    # or a browser (wall clock) can tell how long an event took to reach it.
    relay.add(run_id, read_fd, t0,
              {"experiment": experiment, "params": params, "t0_monotonic_ns": t0,
               "t0_wall": time.time() - (time.monotonic_ns() - t0) / 1e9,
               "cores": os.cpu_count(), **(start_data or {})}, max_events)
    # Every temporary file of the run goes in here (ticket_rush's db, multiprocessing's
    # own pymp-* dirs): a run that is killed cannot clean up after itself, finish() can.
    workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-run{run_id}-")
    gate, gate_opener = SPAWN.Pipe(duplex=False)
    process = SPAWN.Process(target=runner.run_main, name="main",
                            args=(experiment, params, channel, os.getpid(), workdir, gate))
    try:
        process.start()
    finally:
        os.close(channel.fd)  # the run's processes now hold the only write ends
        gate.close()
    try:
        if before_gate is not None:
            assert process.pid is not None
            before_gate(process.pid, t0)
    finally:
        # Open, whatever happened above: a run that cannot be followed exactly still runs.
        # (A main whose gate closes unopened, say the server died, exits at once.)
        with contextlib.suppress(OSError):
            gate_opener.send_bytes(b"go")
        gate_opener.close()
    return process, workdir


def remove_stale_workdirs() -> list[str]:
    """Remove the run directories of servers that are gone (killed with -9, say)."""
    removed = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), WORKDIR_PREFIX + "*-run*-*")):
        owner = os.path.basename(path)[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def finish(relay: Relay, run_id: str, process: BaseProcess, workdir: str,
           stop_reason: str | None, grace: float, *,
           reaped: list[tuple[int, int]] | None = None) -> None:
    """Every holder of the run's pipe has exited: end the run for good (blocking).

    Processes that never held the pipe (a forkserver, a resource tracker) leave by
    themselves once the main is gone; whatever has not left in time is stopped. Then the
    main is reaped, adopted orphans too, and the relay ends the run (app.pipe.ledger builds its
    run.end). `reaped` holds the adopted zombies a cancel has reaped already: they get
    their proc.reap too.
    """
    reaped = reaped if reaped is not None else []
    assert process.pid is not None
    pgid = process.pid  # the main called setsid(): its pid is the group's id
    if not procgroup.wait_until_gone(pgid, grace, {pgid}, reaped):
        procgroup.stop_group(pgid, 0.5, frozenset({pgid}), reaped)
    process.join(5)
    exitcode = process.exitcode
    if exitcode is not None:
        # Until a spawned Process is closed (or collected) it keeps two pipe fds open; the
        # run's record, which holds it, lives as long as the server: 2 fds per run leaked.
        process.close()
    shutil.rmtree(workdir, ignore_errors=True)
    reaped.extend(procgroup.reap_adopted(pgid, {pgid}))
    t = time.monotonic_ns()
    relay.inject(run_id, [reaped_by_server(pid, code, t) for pid, code in reaped] +
                 [reaped_by_server(pgid, exitcode, t)])
    relay.end(run_id, stop_reason, exitcode)
