"""Exact on-CPU spans of a process tree, from the kernel's context-switch records.

Runs in the server (or any process that watches a run): it opens the events on the run's
main process and reads their ring buffers; the watched processes run no code of ours.

    kernel, on every switch of a task of the tree        the recorder, in the server
    ----------------------------------------------       -------------------------------
    sched_out(task on cpu N) --PERF_RECORD_SWITCH out--> ring[N] --drain()--> Span(pid,
    sched_in (task on cpu N) --PERF_RECORD_SWITCH in --> ring[N]    tid, cpu, t0, t1,
    fork / exit              --PERF_RECORD_FORK/EXIT --> ring[N]    preempted)
    every switch on cpu N    --SWITCH_CPU_WIDE ------> wide[N]  (privileged: the stretches
      (CPU-wide event)                                           of tasks after their EXIT)

Its parts, each a module of kernel/: the event and its records (`perf_abi`, and why the
raw syscall), who may open it (`perf_access`), a ring read out (`perf_ring`), the per-task
records paired into stretches (`switch_records`), an exited task's last stretches from the
CPU-wide records (`exit_tails`). This module opens them on a run and drains them.

Layout: one event per CPU (pid=run main, cpu=N), each with its own ring. The kernel
refuses to mmap an inherited event opened with cpu=-1 (EINVAL: all the tree's CPUs would
write one buffer), and `PERF_EVENT_IOC_SET_OUTPUT` from one CPU's event to another's is
EINVAL too (both tried on Linux 6.18). Inherited copies write to their parent event's
ring, so each CPU's ring gets the records of every task of the tree while on that CPU.

Nothing missed at the start: `inherit` follows only what is created *after* the open,
and an event opened on a pid follows that one thread. So `open(pid)` must happen while the
pid has one thread and no child, and `open()` checks it (ValueError otherwise: a late
open is an error, not a silent gap). The server should spawn the run's main so that it
first blocks on a gate (a read of a pipe it inherited), open the recorder on its pid, then
write to the gate. Chosen over "the run's main opens it on itself and sends the fds with
SCM_RIGHTS" because the fds, the rings and the draining stay in one process, the run's
main needs no perf code at all, and the gate opens the same way when perf is refused.
What is missed is the main's own interpreter start-up before the gate, before the run's t0.
"""

from __future__ import annotations

import mmap
import os
import time

from procscope.kernel.exit_tails import ExitTails
from procscope.kernel.perf_abi import CPU_WIDE, enable, online_cpus, perf_event_open
from procscope.kernel.perf_access import CPU_WIDE_REFUSED, availability, refusal_reason
from procscope.kernel.perf_ring import map_or_close, map_ring, read_ring
from procscope.kernel.procgroup import children_of
from procscope.kernel.switch_records import Running, Span, TaskRecords

# What the recorder's users take from here, whichever module of kernel/ defines it.
__all__ = ["Running", "Span", "SwitchRecorder", "availability", "refusal_reason"]

# Each CPU-wide ring: 1 MiB, ~26,000 records, 0.2 s of a core switching 130,000 times a
# second (two processes ping-ponging a byte). Only privileged users get these events, and
# perf_event_mlock_kb does not limit them.
WIDE_DATA_PAGES = 256


class SwitchRecorder:
    """The on-CPU stretches of one run's process tree, read from per-CPU rings.

    Not thread-safe: one thread calls open(), drain() and close(). `data_pages` is each
    ring's size in pages (a power of two); an unprivileged user's rings count against
    kernel.perf_event_mlock_kb (516 KiB per CPU by default), so open() halves it, down to
    8 pages, if the kernel refuses the mapping.

    `cpu_wide`: follow exited tasks to their last switch-out with CPU-wide events
    (kernel.exit_tails): None (the default) where the kernel allows it, True required
    (open() raises where refused), False never. After open(), `exit_tails` says whether
    they are followed and, if not, `wide_refused` why.
    """

    def __init__(self, data_pages: int = 64, cpu_wide: bool | None = None) -> None:
        if data_pages < 1 or data_pages & (data_pages - 1):
            raise ValueError(f"data_pages must be a power of two, not {data_pages}")
        self.data_pages = data_pages
        self.cpu_wide = cpu_wide
        self.exit_tails = False  # exited tasks are followed to their last switch-out
        self.wide_refused = ""  # why not, when cpu_wide was wanted and refused
        self._rings: list[tuple[int, int, mmap.mmap]] = []  # (cpu, fd, ring)
        self._wide: list[tuple[int, int, mmap.mmap]] = []  # the CPU-wide events, if any
        self._records = TaskRecords()
        self._tails: ExitTails | None = None

    @property
    def lost(self) -> int:
        """Records the kernel dropped because a ring was full."""
        return self._records.lost + (self._tails.lost if self._tails else 0)

    @property
    def broken(self) -> int:
        """Stretches not reported: cut by a loss, or a switch-out without an in."""
        return self._records.broken + (self._tails.broken if self._tails else 0)

    @property
    def forks(self) -> int:
        return self._records.forks

    @property
    def exits(self) -> int:
        return self._records.exits

    @property
    def tail_spans(self) -> int:
        """Stretches of exited tasks, closed by a CPU-wide switch-out."""
        return self._tails.tail_spans if self._tails else 0

    def open(self, pid: int) -> None:
        """Follow `pid` and everything it creates from now on; `pid` has one thread, no child."""
        if self._rings:
            raise RuntimeError("this recorder is already open")
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        children = children_of(pid)
        if tasks != [pid] or children:
            raise ValueError(
                f"pid {pid} already has threads {[t for t in tasks if t != pid]} and children "
                f"{children} that would not be recorded: open before it starts any")
        pages = self.data_pages
        try:
            for cpu in online_cpus():
                fd = perf_event_open(pid, cpu)
                while True:
                    try:
                        ring = map_ring(fd, pages)
                        break
                    except PermissionError:
                        if pages <= 8:
                            os.close(fd)
                            raise
                        pages //= 2
                self._rings.append((cpu, fd, ring))
            self.data_pages = pages
            if self.cpu_wide is not False:
                self._open_wide(WIDE_DATA_PAGES)
            self._tails = ExitTails() if self._wide else None
            self._records = TaskRecords(pid, frozenset(cpu for cpu, _, _ in self._rings),
                                        self._tails)
            # Enabled only once every CPU's event exists, so no CPU starts late (the
            # CPU-wide ones first: every exit the per-task ones see has its tail). A running
            # pid's event is switched on by an IPI to its core within the ioctl.
            for _, fd, _ in self._wide:
                enable(fd)
            for cpu, fd, _ in self._rings:
                self._records.enabled_ns[cpu] = time.monotonic_ns()
                enable(fd)
        except BaseException:
            self.close()
            raise

    def _open_wide(self, pages: int) -> None:
        """One CPU-wide event and ring per CPU, or none (and `wide_refused` says why)."""
        try:
            for cpu in online_cpus():
                fd = perf_event_open(-1, cpu, CPU_WIDE)
                self._wide.append((cpu, fd, map_or_close(fd, pages)))
        except OSError as e:
            for _, fd, ring in self._wide:
                ring.close()
                os.close(fd)
            self._wide = []
            if self.cpu_wide:
                raise
            self.wide_refused = CPU_WIDE_REFUSED.format(error=e)
            return
        self.exit_tails = True

    def drain(self) -> list[Span]:
        """The stretches finished since the last drain, by t0. Cheap: call it often."""
        now = time.monotonic_ns()
        # The CPU-wide rings are read first: a tail's records in them are after its EXIT,
        # so that EXIT is in the per-task rings read next, and its tid is known in time.
        wide = [(cpu, read_ring(ring)) for cpu, _, ring in self._wide]
        spans: list[Span] = []
        for cpu, _, ring in self._rings:
            data = read_ring(ring)
            if data:
                self._records.parse(cpu, data, spans)
        tails = self._tails
        if tails is not None and tails.followed:  # else nothing in them is the tree's
            for cpu, data in wide:
                tails.parse(cpu, data, spans)
            tails.expire(now)
        spans.sort(key=lambda s: s.t0_ns)
        return spans

    def new_processes(self) -> list[tuple[int, int]]:
        """(pid, ppid) of the processes the tree created, read by the drains since the last
        call. Complete unless records were lost (`lost`)."""
        new, self._records.new = self._records.new, []
        return new

    def running(self) -> list[Running]:
        """Threads switched in and not out yet, as of the last drain."""
        return self._records.running() + (self._tails.running() if self._tails else [])

    def close(self) -> None:
        """Release the rings and the events; stretches still open are not reported."""
        for _, fd, ring in self._rings + self._wide:
            ring.close()
            os.close(fd)
        self._rings, self._wide = [], []
        self._records.oncpu.clear()
        if self._tails is not None:
            self._tails.clear()

    def __enter__(self) -> SwitchRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
