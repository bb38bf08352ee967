"""An exited task's last stretches on a core, read from the CPU-wide records.

Runs in the server, in the thread that drains the recorder (kernel.switches).

The end of a task. Its per-task events are torn down with it, and the kernel writes its
PERF_RECORD_EXIT then (on 6.18 right after sched_process_exit, before exit_mm(),
exit_files(), exit_notify()): no switch of it is recorded after that. But it runs on,
through one or several stretches (preempted, woken on another core), until its final
switch-out in state Z, longer the more memory it gives back. So, where the kernel allows
CPU-wide events (kernel.perf_access), the recorder also opens one per CPU, whose
PERF_RECORD_SWITCH_CPU_WIDE records cover every switch on that core, and are not torn
down with any task. An EXIT then leaves the task's stretch open (a tail), and the tail's
records are taken from these rings: the CPU's first switch-out after the EXIT closes it
(an exited thread's pid is released before its last schedule(), and that record carries
DEAD_TID, not its tid), and each later switch-in of that tid opens another, until the
tid is taken by a new task of the tree (a FORK) or has not run for TAIL_IDLE_NS (its
last switch-out cannot be told from a sleep; reuse of a tid needs the pid allocator to
wrap, pid_max allocations). The tree's tids are the ones whose EXIT the per-task rings
gave; nothing else in the CPU-wide rings is read. They are read before the per-task
ones in each drain (a tail record in them is after its EXIT, so that EXIT is in the
per-task rings read after), and each EXIT is placed among its CPU's records by time.
They are only walked while a tail is followed; the rest of the time a drain checks in
a few C-level operations that no record in them is a tail's (`_none_of`).

Where only per-task events are allowed (no tails: `exit_tails` False), each exiting
task's stretch ends at its EXIT record, and its exit teardown after it is not recorded.

A CPU-wide ring losing records (`lost`, counted only while a tail is followed: the rest
is not the tree's) cuts the tail on that core (`broken`).
"""

from __future__ import annotations

from dataclasses import dataclass

from procscope.kernel.perf_abi import (
    DEAD_TID,
    HEADER,
    LOST,
    MISC_SWITCH_OUT,
    MISC_SWITCH_OUT_PREEMPT,
    PERF_RECORD_LOST,
    PERF_RECORD_SWITCH_CPU_WIDE,
    SAMPLE_ID,
    SAMPLE_ID_FROM_END,
    WIDE_SIZE,
)
from procscope.kernel.switch_records import Running, Span

# An exited task not seen on a core for this long is taken to be gone: its tid is no longer
# looked for in the CPU-wide records (its last switch-out cannot be told from a sleep).
TAIL_IDLE_NS = 1_000_000_000


@dataclass
class Tail:
    """An exited task of the tree, followed in the CPU-wide records to its last switch-out."""

    pid: int
    exit_ns: int  # its PERF_RECORD_EXIT: CPU-wide records of its tid before this are not its
    last_ns: int  # its latest switch-out (or its EXIT), for TAIL_IDLE_NS


class ExitTails:
    """The exited tasks of one tree still followed, and their stretches after the EXIT."""

    def __init__(self) -> None:
        self.followed: dict[int, Tail] = {}  # tid -> exited task still followed
        self.lost = 0  # CPU-wide records dropped while a tail was followed
        self.broken = 0  # tail stretches cut by a loss or a missing switch-out
        self.tail_spans = 0  # stretches closed by a CPU-wide switch-out
        self._on: dict[int, tuple[int, int]] = {}  # cpu -> (tid, t0): a tail on a core
        # cpu -> [(exit_ns, tid, t0)]: EXITs read, not yet placed among that CPU's records
        self._exiting: dict[int, list[tuple[int, int, int]]] = {}
        self._next_expiry = 0

    def exited(self, cpu: int, pid: int, tid: int, exit_ns: int, t0: int) -> None:
        """The per-task rings gave an EXIT of `tid` on `cpu`, on that core since t0: it runs
        on there (it wrote this record there)."""
        self.followed[tid] = Tail(pid, exit_ns, exit_ns)
        self._exiting.setdefault(cpu, []).append((exit_ns, tid, t0))

    def forked(self, tid: int, t: int) -> None:
        """A new task of the tree took `tid` at t: an older tail of that tid is over."""
        tail = self.followed.get(tid)
        if tail is not None and t > tail.exit_ns:
            del self.followed[tid]

    def running(self) -> list[Running]:
        """Tails on a core now, their switch-out not read yet."""
        return [Running(self.followed[tid].pid, tid, cpu, t0)
                for cpu, (tid, t0) in self._on.items() if tid in self.followed]

    def clear(self) -> None:
        """Forget every tail (the recorder is closed); the counters stay."""
        self.followed.clear()
        self._on.clear()
        self._exiting.clear()

    def parse(self, cpu: int, data: bytes, spans: list[Span]) -> None:
        """One CPU's CPU-wide records: only the stretches of exited tasks of the tree.

        A ring is one core's switches in order, so the first switch-out after a tail's
        switch-in (or after its EXIT, written on that core) is its own, whatever tid it
        carries: an exited thread's pid is released before its last schedule(), and perf
        then writes DEAD_TID. The EXITs just read from the per-task ring of this CPU are
        put in their place among these records, by time.
        """
        tails, on = self.followed, self._on
        if cpu not in on and cpu not in self._exiting and _none_of(tails, data):
            return  # the common case, checked ~10 times faster than it is walked
        exiting, i = self._exiting.pop(cpu, []), 0
        off, end = 0, len(data)
        while off < end:
            kind, misc, size = HEADER.unpack_from(data, off)
            if size < HEADER.size + SAMPLE_ID.size:  # the kernel never writes one
                raise RuntimeError(f"perf record of size {size} at offset {off} on cpu {cpu}")
            _, tid, t, _ = SAMPLE_ID.unpack_from(data, off + size - SAMPLE_ID_FROM_END)
            while i < len(exiting) and exiting[i][0] < t:
                self._tail_starts(cpu, *exiting[i])
                i += 1
            if kind == PERF_RECORD_SWITCH_CPU_WIDE:
                if misc & MISC_SWITCH_OUT:
                    slot = on.get(cpu)
                    tail = None if slot is None else tails.get(slot[0])
                    if slot is not None and tail is None:  # its tid was taken since
                        del on[cpu]
                    elif slot is not None and tail is not None and t > tail.exit_ns:
                        del on[cpu]
                        if tid in (slot[0], DEAD_TID):
                            spans.append(Span(tail.pid, slot[0], cpu, slot[1], t,
                                              bool(misc & MISC_SWITCH_OUT_PREEMPT)))
                            tail.last_ns = t
                            self.tail_spans += 1
                        else:  # another task leaves: the tail's switch-out is gone
                            self.broken += 1
                else:
                    tail = tails.get(tid)
                    if tail is not None and t > tail.exit_ns:
                        if cpu in on:
                            self.broken += 1
                        on[cpu] = (tid, t)
            elif kind == PERF_RECORD_LOST:
                self.lost += LOST.unpack_from(data, off + 8)[1]
                if on.pop(cpu, None) is not None:
                    self.broken += 1
            off += size
        for exit_ns, tid, t0 in exiting[i:]:  # after the last record read: on the core now
            self._tail_starts(cpu, exit_ns, tid, t0)

    def expire(self, now: int) -> None:
        """Forget the exited tasks off every core for TAIL_IDLE_NS: they are gone (checked
        every tenth of it)."""
        if now < self._next_expiry:
            return
        on = {tid for tid, _ in self._on.values()}
        for tid in [tid for tid, tail in self.followed.items()
                    if tid not in on and now - tail.last_ns > TAIL_IDLE_NS]:
            del self.followed[tid]
        self._next_expiry = now + TAIL_IDLE_NS // 10

    def _tail_starts(self, cpu: int, exit_ns: int, tid: int, t0: int) -> None:
        """An exited task is on `cpu` (it wrote its EXIT there), since t0: its stretch goes
        on until the CPU's next switch-out."""
        if tid not in self.followed:  # its tid was taken by a new task of the tree since
            return
        if cpu in self._on:  # the previous tail's switch-out is gone
            self.broken += 1
        self._on[cpu] = (tid, t0)


def _none_of(tids: dict[int, Tail], data: bytes) -> bool:
    """True if `data` is CPU-wide switch records only (no loss) and none is of one of
    `tids`: with no tail on that core, nothing in it is the tree's."""
    n, rest = divmod(len(data), WIDE_SIZE)
    if rest or n == 0:
        return not data
    uniform = (data[0::WIDE_SIZE] == bytes([PERF_RECORD_SWITCH_CPU_WIDE]) * n
               and data[6::WIDE_SIZE] == bytes([WIDE_SIZE]) * n
               and data[7::WIDE_SIZE] == bytes(n))  # type and size, low bytes (little-endian)
    # the sample tid, at byte 20 of each record: u32 number 5 of 10
    return uniform and tids.keys().isdisjoint(memoryview(data).cast("I")[5::10].tolist())
