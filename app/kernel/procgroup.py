"""A run's processes as the kernel sees them: its process group, found through /proc.

Runs in the server (and in `procscope run`). Every process of a run is in the session and
process group its main process created with setsid(), whoever its parent is by now, so the
group is how a run is stopped and how "nothing of it is left" is checked.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from typing import NamedTuple

PR_SET_CHILD_SUBREAPER = 36


class ProcStat(NamedTuple):
    """The fields of /proc/<pid>/stat that procscope uses."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    utime: int
    stime: int
    num_threads: int
    processor: int


def read_stat(path: str) -> ProcStat | None:
    """Parse one /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat); None if it is gone.

    os.open/os.read rather than open(): this runs ~10^4-10^5 times a second in the
    sampler, and the io stack costs several times the read itself.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_stat(raw)


def parse_stat(raw: bytes) -> ProcStat | None:
    """The fields procscope uses, from the text of a stat file."""
    # comm (field 2) may hold spaces and parentheses: it ends at the last ')'.
    close = raw.rfind(b")")
    if close < 0:
        return None
    f = raw[close + 2:].split()
    return ProcStat(int(raw[: raw.index(b" ")]), f[0].decode(), int(f[1]), int(f[2]),
                    int(f[11]), int(f[12]), int(f[17]), int(f[36]))


def members(pgid: int) -> list[ProcStat]:
    """Every process of the group, zombies included."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(f"/proc/{name}/stat")
            if stat is not None and stat.pgrp == pgid:
                found.append(stat)
    return found


def living(pgid: int) -> list[ProcStat]:
    """The group's processes that are not zombies."""
    return [p for p in members(pgid) if p.state not in ("Z", "X")]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` now (its task's children file, else a scan)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan /proc
        found = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = read_stat(f"/proc/{name}/stat")
                if stat is not None and stat.ppid == pid:
                    found.append(stat.pid)
        return found


def become_subreaper() -> None:
    """Adopt our descendants' orphans instead of letting them go to init (prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_adopted(pgid: int, own_children: set[int]) -> list[tuple[int, int]]:
    """Reap, by pid, the group's zombies that were re-parented to us.

    Never waitpid(-1): that would steal exit statuses that multiprocessing (or the server's
    own Process objects, `own_children`) are waiting to collect.
    """
    me = os.getpid()
    reaped = []
    for p in members(pgid):
        if p.ppid == me and p.pid not in own_children:
            try:
                pid, status = os.waitpid(p.pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if pid:
                reaped.append((pid, os.waitstatus_to_exitcode(status)))
    return reaped


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies are left
        return False
    return True


def wait_until_gone(pgid: int, timeout: float, own_children: set[int],
                    reaped: list[tuple[int, int]] | None = None) -> bool:
    """Reap adopted zombies until no living process of the group is left, or timeout.

    What was reaped, (pid, exit code), goes to `reaped`: a process killed while its
    parent was stuck (a buyer waiting for a lock its holder died with) is reaped here,
    and its exit code is the only word of how it died.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = reap_adopted(pgid, own_children)
        if reaped is not None:
            reaped.extend(found)
        if not living(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def wait_for_leader(pgid: int, timeout: float) -> bool:
    """Wait until process `pgid` leads its own group (its setsid() is done) or has exited.

    A run's main calls setsid() first thing, but a stop can come sooner (a cancel right
    after the start: a spawned main takes ~0.2 s to get there). Until then there is no
    group `pgid`: killpg() finds nobody, and the run would go on to its natural end.
    False if it still has not after `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        stat = read_stat(f"/proc/{pgid}/stat")
        if stat is None or stat.state in ("Z", "X") or stat.pgrp == pgid:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def stop_group(pgid: int, grace: float = 1.0, own_children: frozenset[int] = frozenset(),
               reaped: list[tuple[int, int]] | None = None) -> str:
    """Escalate: SIGTERM the group, wait `grace`, SIGKILL, wait. Returns what it took.

    `pgid` is the pid of the process that leads (or is about to lead) the group; adopted
    zombies reaped meanwhile go to `reaped`, as in wait_until_gone.
    """
    children = set(own_children)
    if not wait_for_leader(pgid, 5.0):
        # Stuck before its setsid(): it has started nothing yet, so it is all there is.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pgid, signal.SIGKILL)
        return "SIGKILL (before setsid)"
    if not living(pgid):
        return "already gone"
    signal_group(pgid, signal.SIGTERM)
    if wait_until_gone(pgid, grace, children, reaped):
        return "SIGTERM"
    signal_group(pgid, signal.SIGKILL)
    wait_until_gone(pgid, 2.0, children, reaped)
    return "SIGKILL"
