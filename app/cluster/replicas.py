"""`procscope --replicas N --redis URL`: N replica servers on one machine, supervised.

Runs in the user's terminal (the supervisor); each replica is `python -m procscope` in a process
of its own, on its own port: PORT, PORT+1, ..., PORT+N-1, so that any load balancer can
list them (README, "Replicas"), and a replica that dies is started again. Not one shared
socket with SO_REUSEPORT: the kernel would spread connections by a hash, a replica that
is restarted would lose its share of the hash mid-class, and `/api/status` could not say
which replica answered.

Modelled on uvicorn's supervisors/multiprocess.py: start all, then a
`while not should_exit.wait(0.5)` loop; at a stop, terminate all, join all, kill the one
that hangs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from procscope import secret_token
from procscope.settings import OPTIONS, Settings

log = logging.getLogger("procscope.cluster.replicas")

STOP_SECONDS = 15  # a replica cancels its runs (escalation) before it exits: give it time
RESTART_AFTER = 1.0  # a replica that keeps dying is started again at most this often


def replica_argv(settings: Settings, port: int, log_level: str) -> list[str]:
    """The command line of one replica: every setting as given, its own port, N=1; not
    the token, which goes through a pipe (start_replica)."""
    argv = [sys.executable, "-m", "procscope", "--log-level", log_level]
    for name in OPTIONS:
        value = getattr(settings, name)
        if name == "token":
            continue
        if name == "port":
            value = port
        elif name == "replicas":
            value = 1
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


def start_replica(settings: Settings, port: int, log_level: str) -> subprocess.Popen[bytes]:
    with secret_token.handing_over(settings.token) as (secret, fds):
        return subprocess.Popen(replica_argv(settings, port, log_level), pass_fds=fds,
                                env={**os.environ, **secret})


def supervise(settings: Settings, log_level: str) -> int:
    """Run the replicas until SIGINT or SIGTERM; the exit status. (Settings refused
    --replicas without --redis, or past the last port.)"""
    should_exit = threading.Event()

    def stop(sig: int, frame: FrameType | None) -> None:
        should_exit.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    ports = [settings.port + i for i in range(settings.replicas)]
    procs: dict[int, subprocess.Popen[bytes]] = {}
    started: dict[int, float] = {}
    for port in ports:
        procs[port] = start_replica(settings, port, log_level)
        started[port] = time.monotonic()
    print(f"procscope: {len(ports)} replicas on ports {ports[0]}-{ports[-1]}, sharing "
          f"runs through Redis", flush=True)
    try:
        while not should_exit.wait(0.5):
            for port, proc in procs.items():
                code = proc.poll()
                if code is None or time.monotonic() - started[port] < RESTART_AFTER:
                    continue
                if code == 1 and time.monotonic() - started[port] < 5:
                    # It failed at start (Redis unreachable, say): it said why; so do we.
                    print(f"procscope: the replica on port {port} could not start",
                          file=sys.stderr)
                    return 1
                log.warning("replica on port %s (pid %s) exited with %s: starting it again",
                            port, proc.pid, code)
                procs[port] = start_replica(settings, port, log_level)
                started[port] = time.monotonic()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for port, proc in procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("replica on port %s (pid %s) hangs: killed", port, proc.pid)
                proc.kill()  # it would not stop: nothing else would end it
                proc.wait()
    return 0
