"""The kernel sampler: what the scheduler really did with each process of a live run.

Runs in the server, in one thread for all runs. A process that says "I am on core 1" at
one instant says nothing about the time in between, and a process asleep in
lock.acquire() is on no core at all (DESIGN.md, decision 6). So, `hz` times a second, this
thread reads /proc/<pid>/stat of every process of every live run (and
/proc/<pid>/task/<tid>/stat of each thread, where a process has several) and reports a
`proc.state` event only when something changed: the state (R S D Z T X), the core it last
ran on, the parent.

Which pids: the relay tells us each `proc.start` at once; a slower scan of /proc finds
the run's processes that never report (a forkserver, a resource tracker). Processes that
live and die between two samples still have the proc.start / proc.exit they reported
themselves: the sampler adds what the kernel saw, it never invents or loses a process.

The server is a child subreaper (procgroup.become_subreaper), so a run's orphans are
re-parented to it; when one of them turns zombie here, it is reaped by pid (never
waitpid(-1), which would steal multiprocessing's exit statuses) and reported.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app import procgroup
from app.events import reaped_by_server, server_event
from app.relay import Relay

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DISCOVER_EVERY = 0.2  # seconds between two scans of /proc for unreported processes


@dataclass
class _Watched:
    run_id: str
    pgid: int
    own_children: set[int]  # pids the server's Process objects reap (the run's main)
    pids: set[int] = field(default_factory=set)
    helpers: set[int] = field(default_factory=set)
    last: dict[tuple[int, int], tuple[str, int, int, float]] = field(default_factory=dict)
    run_ns: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    fds: dict[tuple[int, int], int] = field(default_factory=dict)  # open stat files
    cpu_time: dict[int, float] = field(default_factory=dict)
    next_discovery: float = 0.0

    def stat(self, key: tuple[int, int]) -> procgroup.ProcStat | None:
        """The stat of (pid, tid), re-read through a file kept open: pread costs half of
        open+read+close, and an fd stays bound to its process (a reused pid is not it).
        """
        fd = self.fds.get(key)
        try:
            if fd is None:
                pid, tid = key
                path = f"/proc/{pid}/stat" if pid == tid else f"/proc/{pid}/task/{tid}/stat"
                fd = self.fds[key] = os.open(path, os.O_RDONLY)
            return procgroup.parse_stat(os.pread(fd, 1024, 0))
        except OSError:  # gone (ESRCH once reaped), or out of fds
            self.forget(key)
            return None

    def forget(self, key: tuple[int, int]) -> None:
        fd = self.fds.pop(key, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for key in list(self.fds):
            self.forget(key)


class Sampler:
    """One thread sampling /proc for every live run; see the module docstring."""

    def __init__(self, relay: Relay, hz: float = 100.0, budget: float = 0.15) -> None:
        if not 1 <= hz <= 1000:
            raise ValueError(f"sample rate must be 1..1000 Hz, got {hz}")
        if not 0 < budget <= 1:
            raise ValueError(f"sampler budget must be in (0, 1] of a core, got {budget}")
        self.relay = relay
        self.period = 1.0 / hz
        # A pass costs ~11 µs per process (reading /proc is a syscall that builds text):
        # with hundreds of processes, 100 Hz would take a core away from the lesson it
        # observes. Past `budget` (a share of one core) the sampler slows down, and says
        # so with a sampler.rate event: coarser, but the lesson keeps its cores.
        self.budget = budget
        self.hz = hz  # the rate achieved lately, as last reported
        self._cost = 0.0  # CPU seconds per pass, smoothed
        self._lock = threading.Lock()
        self._runs: dict[str, _Watched] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._me = os.getpid()
        self.samples = 0  # how many sampling passes ran (for the cost figures)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="procscope-sampler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def watch(self, run_id: str, main_pid: int) -> None:
        with self._lock:
            self._runs[run_id] = _Watched(run_id, main_pid, {main_pid}, {main_pid})

    def add_pid(self, run_id: str, pid: int) -> None:
        """Called by the relay thread on each proc.start."""
        with self._lock:
            watched = self._runs.get(run_id)
            if watched is not None:
                watched.pids.add(pid)

    def unwatch(self, run_id: str) -> None:
        """Stop sampling a run; once this returns, nothing more is injected for it."""
        with self._lock:
            watched = self._runs.pop(run_id, None)
            if watched is not None:
                watched.close()

    def open_files(self) -> int:
        with self._lock:
            return sum(len(w.fds) for w in self._runs.values())

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            cpu = time.thread_time()
            with self._lock:
                for watched in self._runs.values():
                    self._sample(watched)
                self._cost = 0.8 * self._cost + 0.2 * (time.thread_time() - cpu)
                period = max(self.period, self._cost / self.budget)
                self._report_rate(1.0 / period)
            self.samples += 1
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind (a busy machine): skip, don't burst
                next_tick = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _report_rate(self, hz: float) -> None:
        """Tell every watched run when the sampling rate moves by a quarter or more."""
        if abs(hz - self.hz) < 0.25 * self.hz:
            return
        self.hz = hz
        t = time.monotonic_ns()
        for w in self._runs.values():
            self.relay.inject(w.run_id, [server_event(
                "sampler.rate", {"hz": round(hz, 1), "resolution_ms": round(1e3 / hz, 1),
                                 "budget": self.budget}, t_ns=t)])

    def _sample(self, w: _Watched) -> None:
        now = time.monotonic()
        events: list[dict[str, Any]] = []
        t = time.monotonic_ns()
        if now >= w.next_discovery:
            for p in sorted(procgroup.members(w.pgid)):
                if p.pid not in w.pids:
                    w.pids.add(p.pid)
                    if p.ppid not in w.helpers:  # a forkserver's children report themselves
                        self._announce_helper(w, p.pid, events, t)
            w.next_discovery = now + DISCOVER_EVERY
        for pid in list(w.pids):
            stat = w.stat((pid, pid))
            if stat is None:
                w.pids.discard(pid)
                for key in [k for k in w.fds if k[0] == pid]:
                    w.forget(key)
                if pid in w.helpers:
                    events.append(server_event("proc.exit", {"exitcode": None,
                                                             "source": "kernel"},
                                               t_ns=t, pid=pid))
                continue
            threads = [stat]
            if stat.num_threads > 1:
                threads = self._threads(w, pid) or [stat]
            for th in threads:
                key = (pid, th.pid)
                if th.state == "R":
                    oncpu = self._oncpu(w, key, t)
                else:
                    oncpu = 0.0
                    w.run_ns.pop(key, None)
                now_state = (th.state, th.processor, stat.ppid, oncpu)
                if w.last.get(key) == now_state:
                    continue
                w.last[key] = now_state
                data: dict[str, Any] = {"state": th.state, "cpu": th.processor,
                                        "ppid": stat.ppid}
                if th.state == "R":
                    data["oncpu"] = oncpu
                if len(threads) > 1 or th.pid != pid:
                    data["tid"] = th.pid
                if th.state == "Z" and th.pid == pid:
                    data["cpu_time"] = (stat.utime + stat.stime) / CLOCK_TICKS
                events.append(server_event("proc.state", data, t_ns=t, pid=pid,
                                           ppid=stat.ppid, cpu=th.processor))
            if stat.state == "Z" and stat.ppid == self._me and pid not in w.own_children:
                self._reap(w, pid, events, t)
        if events:
            self.relay.inject(w.run_id, events)

    def _oncpu(self, w: _Watched, key: tuple[int, int], t: int) -> float:
        """The share of the last sample period this R thread really spent on a core.

        The kernel's R means runnable: on a busy machine a process can be R for seconds
        while running a tenth of the time. /proc/<pid>/task/<tid>/schedstat's first field
        is the time it really spent on a CPU (ns). Rounded to tenths, so that a steady
        share makes no new events. Read only for R threads: those are few.
        """
        pid, tid = key
        try:
            fd = os.open(f"/proc/{pid}/task/{tid}/schedstat", os.O_RDONLY)
            try:
                run_ns = int(os.read(fd, 128).split()[0])
            finally:
                os.close(fd)
        except (OSError, ValueError, IndexError):
            return 1.0
        previous = w.run_ns.get(key)
        w.run_ns[key] = (t, run_ns)
        if previous is None or t <= previous[0]:
            return 1.0  # just became R: assume running until the next sample says
        t_prev, run_prev = previous
        return round(min(1.0, (run_ns - run_prev) / (t - t_prev)), 1)

    def _announce_helper(self, w: _Watched, pid: int, events: list[dict[str, Any]],
                         t: int) -> None:
        """multiprocessing's own helpers never report: the kernel introduces them.

        A forkserver or a resource tracker is exec'd, not forked from a process of the
        run, so no reporter runs in it; it is still a process of the run, and shown.
        """
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return
        for marker, name in (("multiprocessing.forkserver", "forkserver"),
                             ("multiprocessing.resource_tracker", "resource_tracker")):
            if marker in cmdline:
                w.helpers.add(pid)
                events.append(server_event("proc.start", {
                    "role": "helper", "name": name, "daemon": False, "source": "kernel"},
                    t_ns=t, pid=pid, proc=name))
                return

    def _threads(self, w: _Watched, pid: int) -> list[procgroup.ProcStat]:
        try:
            tids = {int(tid) for tid in os.listdir(f"/proc/{pid}/task")}
        except OSError:
            return []
        for key in [k for k in w.fds if k[0] == pid and k[1] != pid and k[1] not in tids]:
            w.forget(key)  # a thread that has ended
        found = []
        for tid in sorted(tids):
            stat = w.stat((pid, tid))
            if stat is not None:
                found.append(stat)
        return found

    def _reap(self, w: _Watched, pid: int, events: list[dict[str, Any]], t: int) -> None:
        """An orphan of the run, adopted by the server, has exited: collect it."""
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if reaped:
            events.append(reaped_by_server(pid, os.waitstatus_to_exitcode(status), t))

