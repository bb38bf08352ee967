"""Arming the reporter in a traced program's main process (`procscope trace`).

Runs in the traced program's main process, from app/trace/trace_site/sitecustomize.py, while
the interpreter starts, before the program's first line. Standard library and
app.pipe.reporter only (like the reporter: every process of the program may import it).

The program is started as `python script.py ...` (or `-m`, `-c`) itself, so that
`__main__`, `sys.argv`, `sys.path[0]`, tracebacks, exit codes and the exit on an uncaught
KeyboardInterrupt are the interpreter's own, not an imitation. What procscope adds is
taken away again here: the PYTHONPATH entry and the variables are removed from the
environment (the program and its children do not see them), and the sitecustomize that
this one hid, if any, is run.
"""

from __future__ import annotations

import importlib
import os
import sys

from procscope.pipe import reporter

ENV = "PROCSCOPE_TRACE"  # "channel fd,gate fd,site dir"
ENV_PYTHONPATH = "PROCSCOPE_TRACE_PYTHONPATH"  # the user's own PYTHONPATH, if any


def arm_from_environment() -> None:
    """Runs in the traced program's main process: wait at the gate, arm the reporter."""
    value = os.environ.pop(ENV, None)
    if value is None:
        return
    channel_fd, gate_fd, site_dir = value.split(",", 2)
    previous = os.environ.pop(ENV_PYTHONPATH, None)
    if previous is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = previous
    sys.path[:] = [p for p in sys.path if p != site_dir]
    _run_hidden_sitecustomize()
    # The gate: `procscope trace` opens it once the server follows this pid (its switch
    # recorder is inherited only by what starts after it is open). EOF: it is gone.
    gate = int(gate_fd)
    try:
        opened = os.read(gate, 1)
    finally:
        os.close(gate)
    if opened != b"1":
        os._exit(1)
    fd = int(channel_fd)
    # Not inherited across exec (a subprocess would hold the pipe open and the run could
    # not end); multiprocessing's fork children share it, spawn ones get it by DupFd.
    os.set_inheritable(fd, False)
    reporter.arm_traced_main(reporter.Channel(fd, echo=True, prims=True))


def _run_hidden_sitecustomize() -> None:
    this = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ImportError as e:
        if e.name != "sitecustomize":
            raise
    finally:
        if "sitecustomize" not in sys.modules and this is not None:
            sys.modules["sitecustomize"] = this
