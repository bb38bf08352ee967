"""The /proc files of one watched run, kept open: what the sampler reads each pass.

Runs in the server, in the sampler's thread. A stat file re-read with pread costs half of
open+read+close, and an open fd stays bound to its process (a reused pid is not it), so
each process's and thread's `stat` and `schedstat` are opened once and kept until the
process or thread is gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from procscope.kernel import procgroup
from procscope.kernel.cpu_spans import ExactSpans, SampledSpans
from procscope.kernel.switches import SwitchRecorder

Key = tuple[int, int]  # (pid, tid); tid == pid for a process's main thread


@dataclass
class Watched:
    """One live run, as the sampler follows it."""

    run_id: str
    pgid: int
    t0_ns: int  # the run's t=0 (its run.start), for the stretches' t0/t1
    own_children: set[int]  # pids the server's Process objects reap (the run's main)
    recorder: SwitchRecorder | None = None  # exact core lanes, where the kernel allows
    exact: ExactSpans | None = None  # its stretches, merged, while they arrive
    spans: SampledSpans | None = None  # shares (and the sampled stretches, without recorder)
    pids: set[int] = field(default_factory=set)
    helpers: set[int] = field(default_factory=set)
    threads: dict[int, set[int]] = field(default_factory=dict)  # pid -> tids seen
    ppids: dict[int, int] = field(default_factory=dict)
    last: dict[Key, tuple[str, int, int, float]] = field(default_factory=dict)
    shares: dict[Key, float] = field(default_factory=dict)  # last period's share, per thread
    fds: dict[Key, int] = field(default_factory=dict)  # open stat files
    sched_fds: dict[Key, int] = field(default_factory=dict)  # open schedstat files
    next_discovery: float = 0.0
    # Exact runs only (app.kernel.sampler, "Which pids, which passes"):
    reported: set[int] = field(default_factory=set)  # pids that reported proc.start
    # forks seen, not reported yet: (pid, ppid, when seen, cmdline checks so far)
    unannounced: list[tuple[int, int, float, int]] = field(default_factory=list)
    runnable: set[int] = field(default_factory=set)  # pids with a thread last seen R
    next_full: float = 0.0  # when every pid is read again, switches or not

    def stat(self, key: Key) -> procgroup.ProcStat | None:
        """The stat of (pid, tid); None once it is gone (ESRCH once reaped) or unreadable."""
        raw = _pread(self.fds, key, "stat", 1024)
        return procgroup.parse_stat(raw) if raw is not None else None

    def run_ns(self, key: Key) -> int | None:
        """The thread's time on a core so far (schedstat's first field, ns)."""
        raw = _pread(self.sched_fds, key, "schedstat", 128)
        try:
            return int(raw.split()[0]) if raw else None
        except ValueError:
            return None

    def forget(self, key: Key) -> None:
        for fds in (self.fds, self.sched_fds):
            fd = fds.pop(key, None)
            if fd is not None:
                os.close(fd)

    def forget_process(self, pid: int) -> None:
        for key in [k for k in {*self.fds, *self.sched_fds} if k[0] == pid]:
            self.forget(key)

    def open_files(self) -> int:
        return len(self.fds) + len(self.sched_fds)

    def close(self) -> None:
        for key in list({*self.fds, *self.sched_fds}):
            self.forget(key)
        if self.recorder is not None:
            self.recorder.close()


def _pread(fds: dict[Key, int], key: Key, name: str, size: int) -> bytes | None:
    fd = fds.get(key)
    try:
        if fd is None:
            pid, tid = key
            path = f"/proc/{pid}/{name}" if pid == tid else f"/proc/{pid}/task/{tid}/{name}"
            fd = fds[key] = os.open(path, os.O_RDONLY)
        return os.pread(fd, size, 0)
    except OSError:
        fd = fds.pop(key, None)
        if fd is not None:
            os.close(fd)
        return None
