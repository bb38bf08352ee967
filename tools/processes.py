"""Ending a child process the way a user's Ctrl-C or `kill` would, shared by the tests'
servers (tests/conftest.py, tests/test_links.py) and the benchmarks' (bench/server.py)."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def end(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds; reaped either way
    (nothing is sent to a process that already exited)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
