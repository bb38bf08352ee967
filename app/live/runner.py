"""The experiment's main process: the one process the server (or `procscope run`) starts.

Runs in the experiment's main process, started from a spawn context so that the server
never forks (its threads' locks and its sockets would be copied into the run). It
becomes the leader of a new session, so the whole run is one process group that can be
signalled at once, asks the kernel to kill it if the server dies, waits at the server's
gate, and then runs the lesson with the start method the run asked for.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import tempfile
import traceback
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

from procscope.pipe import reporter

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _kill_own_group(signum: int, frame: Any) -> None:
    # The server is gone: take every process of the run with us, orphans included.
    os.killpg(0, signal.SIGKILL)


def run_main(experiment_id: str, params: dict[str, Any], channel: reporter.Channel,
             parent_pid: int, workdir: str, gate: Connection | None = None) -> None:
    """Runs in the experiment's main process: run one lesson, report its result.

    `gate`: the lesson starts only once the server has written to it (it follows this
    process exactly from then on: nothing before the gate is a thread or a child).
    """
    os.setsid()
    # The run's own temporary directory, for it and every process it starts (fork keeps
    # tempfile.tempdir, spawn and forkserver children read TMPDIR).
    os.environ["TMPDIR"] = workdir
    tempfile.tempdir = workdir
    signal.signal(signal.SIGUSR1, _kill_own_group)
    set_parent_death_signal(signal.SIGUSR1)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        _kill_own_group(signal.SIGUSR1, None)
    # SIGUSR1 was only for the parent-death path; children must not inherit a handler
    # that kills the group, so they get the default back right after fork (below).
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGUSR1, signal.SIG_DFL))
    if gate is not None:
        try:
            gate.recv_bytes()
        except EOFError:  # the server closed the gate without opening it: it is gone
            os._exit(1)
        gate.close()

    from procscope import experiments
    from procscope.experiments.spec import LessonFailure

    try:
        spec = experiments.load(experiment_id)
        if spec.instrument_prims:
            reporter.arm_prims(channel)
        multiprocessing.set_start_method(params["start_method"], force=True)
        result = spec.main(SimpleNamespace(**params), reporter.Reporter(params["time_scale"]))
    except LessonFailure as e:
        # The lesson's own words are the whole story (a lost task): no traceback.
        reporter.emit("run.error", type=type(e).__name__, message=str(e),
                      message_zh=e.message_zh or None, traceback=None)
        sys.stdout.flush()
        sys.exit(1)
    except BaseException as e:
        # From the lesson's frames on: this function's own frame says nothing about it.
        where = e.__traceback__.tb_next if e.__traceback__ is not None else None
        reporter.emit("run.error", type=type(e).__name__, message=str(e),
                      traceback="".join(traceback.format_exception(type(e), e, where)))
        sys.stdout.flush()
        sys.exit(1)
    reporter.emit("run.result", result=result)
