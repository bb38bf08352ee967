"""The per-task rings' records of one process tree, turned into stretches on cores.

Runs in the server, in the thread that drains the recorder (kernel.switches).

A per-cpu ring is written by that CPU only, so its records are in time order and a
switch-in pairs with the next switch-out of the same tid *in the same ring*; rings are
not ordered among themselves, which is why stretches are keyed by (cpu, tid).

Losses are never hidden: a full ring makes the kernel drop records and later write a
PERF_RECORD_LOST with their count; `lost` adds them up. A stretch whose switch-in was
before a loss on that CPU may have lost its switch-out, so it is not paired across the
gap: it is dropped and counted in `broken`, with any switch-out that has no switch-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from procscope.kernel.perf_abi import (
    HEADER,
    LOST,
    MISC_SWITCH_OUT,
    MISC_SWITCH_OUT_PREEMPT,
    PERF_RECORD_EXIT,
    PERF_RECORD_FORK,
    PERF_RECORD_LOST,
    PERF_RECORD_SWITCH,
    SAMPLE_ID,
    SAMPLE_ID_FROM_END,
    TASK,
    U64,
)

if TYPE_CHECKING:
    from procscope.kernel.exit_tails import ExitTails, Tail


class Span(NamedTuple):
    """A stretch on one core: switched in at t0_ns, out at t1_ns (CLOCK_MONOTONIC ns).

    `preempted`: the thread was switched out while still runnable (its slice ended or a
    task woke with a better claim); False when it blocked, slept or exited.
    """

    pid: int
    tid: int
    cpu: int
    t0_ns: int
    t1_ns: int
    preempted: bool


class Running(NamedTuple):
    """A thread on a core since t0_ns, its switch-out not seen yet."""

    pid: int
    tid: int
    cpu: int
    t0_ns: int


class TaskRecords:
    """What the per-task rings of one tree have said: stretches, forks, exits, losses.

    `root` is the pid the events were opened on. Opened on a pid that is running, its first
    record on a core is a switch-out with no switch-in: that stretch is taken to start
    when the event of its core was enabled (`enabled_ns[cpu]`, set by the recorder).
    With `tails`, an EXIT hands its task to the CPU-wide records (kernel.exit_tails);
    without, its stretch ends at the EXIT.
    """

    def __init__(self, root: int = 0, cpus: frozenset[int] = frozenset(),
                 tails: ExitTails | None = None) -> None:
        self.tails = tails
        self.lost = 0  # records the kernel dropped because a ring was full
        self.broken = 0  # stretches not reported: cut by a loss, or a switch-out without an in
        self.forks = 0
        self.exits = 0
        # (pid, ppid) of each new process of the tree (a FORK with pid == tid), until
        # taken: the sampler follows them without scanning /proc.
        self.new: list[tuple[int, int]] = []
        self.oncpu: dict[tuple[int, int], tuple[int, int]] = {}  # (cpu, tid) -> (pid, t0)
        self.enabled_ns: dict[int, int] = {}  # cpu -> when its event was enabled
        self._root = root
        self._root_unseen = set(cpus)  # CPUs whose ring has no record of the root yet
        self._no_tails: dict[int, Tail] = {}

    def running(self) -> list[Running]:
        """Threads switched in and not out yet."""
        return [Running(pid, tid, cpu, t0) for (cpu, tid), (pid, t0) in self.oncpu.items()]

    def parse(self, cpu: int, data: bytes, spans: list[Span]) -> None:
        """One CPU's per-task records, in order: the stretches they close go to `spans`."""
        oncpu = self.oncpu
        tails = self._no_tails if self.tails is None else self.tails.followed
        off, end = 0, len(data)
        while off < end:
            kind, misc, size = HEADER.unpack_from(data, off)
            if size < HEADER.size + SAMPLE_ID.size:  # the kernel never writes one
                raise RuntimeError(f"perf record of size {size} at offset {off} on cpu {cpu}")
            if cpu in self._root_unseen and kind != PERF_RECORD_LOST:
                self._first_of_root(cpu, kind, misc, data, off + size - SAMPLE_ID_FROM_END)
            if kind == PERF_RECORD_SWITCH:
                pid, tid, t, _ = SAMPLE_ID.unpack_from(data, off + 8)
                tail = tails.get(tid)
                if tail is not None and t > tail.exit_ns:
                    pass  # exited: the CPU-wide records follow it now
                elif misc & MISC_SWITCH_OUT:
                    start = oncpu.pop((cpu, tid), None)
                    if start is None:
                        self.broken += 1
                    else:
                        spans.append(Span(pid, tid, cpu, start[1], t,
                                          bool(misc & MISC_SWITCH_OUT_PREEMPT)))
                else:
                    if (cpu, tid) in oncpu:  # an in after an in: its out is gone
                        self.broken += 1
                    oncpu[(cpu, tid)] = (pid, t)
            elif kind == PERF_RECORD_EXIT:
                # The task's events go with it: no switch of it follows in these rings
                # (kernel.exit_tails, "The end of a task").
                pid, _, tid, _ = TASK.unpack_from(data, off + 8)
                t = U64.unpack_from(data, off + 24)[0]
                start = oncpu.pop((cpu, tid), None)
                if self.tails is not None:
                    self.tails.exited(cpu, pid, tid, t, t if start is None else start[1])
                elif start is not None:
                    spans.append(Span(pid, tid, cpu, start[1], t, False))
                self.exits += 1
            elif kind == PERF_RECORD_FORK:
                self.forks += 1
                pid, ppid, tid, _ = TASK.unpack_from(data, off + 8)
                if pid == tid:
                    self.new.append((pid, ppid))
                if tid in tails and self.tails is not None:
                    self.tails.forked(tid, U64.unpack_from(data, off + 24)[0])
            elif kind == PERF_RECORD_LOST:
                self.lost += LOST.unpack_from(data, off + 8)[1]
                self._root_unseen.discard(cpu)
                cut = [key for key in oncpu if key[0] == cpu]
                for key in cut:
                    del oncpu[key]
                self.broken += len(cut)
            off += size

    def _first_of_root(self, cpu: int, kind: int, misc: int, data: bytes, sample_id: int) -> None:
        """In a ring with no record of the root yet: if this one is the root's and is not
        its switch-in, the root was on this core when the events were enabled (a recorder
        opened on a running pid), so its stretch there starts then."""
        pid, tid, _, _ = SAMPLE_ID.unpack_from(data, sample_id)
        if tid != self._root:
            return
        self._root_unseen.discard(cpu)
        if kind != PERF_RECORD_SWITCH or misc & MISC_SWITCH_OUT:
            self.oncpu[(cpu, tid)] = (pid, self.enabled_ns[cpu])
