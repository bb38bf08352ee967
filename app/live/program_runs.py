"""A run of kind `program`: a user's own Python program, handed over by `procscope trace`.

Runs in the server, on its event loop. Only ever from app.trace.program_socket (a process
of this user on this machine), never from the web API. The server starts none of its
processes: `procscope trace` does, and is given the write end of the run's pipe; the run
ends once the pipe is at EOF and the program's main has exited.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from procscope.live.run_record import Run
from procscope.pipe.events import server_event
from procscope.pipe.relay import Relay
from procscope.pipe.reporter import Channel

# How long a program's pipe at EOF waits for `procscope trace` to say how its main exited.
MAIN_EXIT_WAIT = 10


def open_program_run(run: Run, relay: Relay, max_events: int) -> int:
    """The run's pipe, read by the relay from now: its write end, for the program."""
    program = run.program
    assert program is not None
    read_fd, channel = Channel.open()
    run.t0_ns = t0 = time.monotonic_ns()
    relay.add(run.id, read_fd, t0,
              {"experiment": "program", "kind": "program", "params": {},
               "argv": program["argv"], "cwd": program["cwd"],
               "command": program["command"], "t0_monotonic_ns": t0,
               "t0_wall": time.time() - (time.monotonic_ns() - t0) / 1e9,
               "cores": os.cpu_count()}, max_events)
    return channel.fd


async def finish_program(run: Run, relay: Relay,
                         wait_gone: Callable[[int], Awaitable[object]]) -> None:
    """A traced program's pipe is at EOF: its run ends once its main's exit is known.

    Nothing is stopped here: processes that never held the pipe (a subprocess, the
    forkserver, the resource tracker) are the program's business, as they would be
    without procscope; the helpers that leave with the main get a moment to go
    (`wait_gone(pgid)`).
    """
    assert run.main_exit is not None
    try:
        exitcode = await asyncio.wait_for(asyncio.shield(run.main_exit), MAIN_EXIT_WAIT)
    except TimeoutError:
        exitcode = None
    if run.pid is not None:
        await wait_gone(run.pid)
        relay.inject(run.id, [server_event(
            "proc.reap", {"child": run.pid, "exitcode": exitcode, "by": "trace"},
            t_ns=time.monotonic_ns(), pid=run.peer_pid, proc="procscope trace")])
    relay.end(run.id, run.stop_reason, exitcode)
