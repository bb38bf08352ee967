"""Exact on-CPU spans of a process tree, from the kernel's context-switch records.

Runs in the server (or any process that watches a run): it opens the events on the run's
main process and reads their ring buffers; the watched processes run no code of ours.
(Past ~300 lines on purpose: a third of it is this docstring, and the rest is one ABI,
perf_event_attr, the rings and their records, which only make sense read together.)

    kernel, on every switch of a task of the tree        this module, in the server
    ----------------------------------------------       -------------------------------
    sched_out(task on cpu N) --PERF_RECORD_SWITCH out--> ring[N] --drain()--> Span(pid,
    sched_in (task on cpu N) --PERF_RECORD_SWITCH in --> ring[N]    tid, cpu, t0, t1,
    fork / exit              --PERF_RECORD_FORK/EXIT --> ring[N]    preempted)
    every switch on cpu N    --SWITCH_CPU_WIDE ------> wide[N]  (privileged: the stretches
      (CPU-wide event)                                           of tasks after their EXIT)

Why written here, on the raw syscall (ctypes + mmap, standard library only). Looked for:
- PyPI (the registry's list, grep perf/event/trace): `py-perf-event` 0.3.1 (Rust, wraps
  perf-event2) and `performance-features` 0.2.6 (SWIG over libpfm4) read hardware
  *counters* only: neither sets `context_switch` nor reads the mmap ring of records.
- Debian: no `python3-perf` (the `perf` Python binding of tools/perf is not packaged; the
  `linux-perf` package ships only perf-script helpers). `python3-bpfcc` (BCC) could trace
  `sched_switch` with eBPF, but it compiles C with LLVM at run time, needs kernel headers
  and root, and is far heavier than the 32-byte records the kernel already offers.
- `perf record -e dummy:u --switch-events` itself: a second process writing perf.data
  that would have to be parsed after the fact; not live.
So: `perf_event_open` (syscall 298 on x86_64) with the `linux/perf_event.h` ABI.

The event: a software DUMMY event counts nothing; `context_switch=1` makes the kernel
write a PERF_RECORD_SWITCH (in, or out with MISC_SWITCH_OUT and, if the task was still
runnable, MISC_SWITCH_OUT_PREEMPT) each time a task of the tree is switched;
`sample_id_all` with TID|TIME|CPU stamps every record with pid, tid, CLOCK_MONOTONIC time
(`use_clockid`, so `time.monotonic_ns()` compares) and cpu; `inherit` follows every thread
and process created after the open; `task` adds FORK/EXIT records; `exclude_kernel` and
`exclude_hv` are what `perf record -e dummy:u` sets, which `perf_event_paranoid` 2 allows
without privilege (side-band records are not filtered by them). Not `comm`: Python 3.11
does not give its threads kernel names, and the reporter already says each one's name.

Layout: one event per CPU (pid=run main, cpu=N), each with its own ring. The kernel
refuses to mmap an inherited event opened with cpu=-1 (EINVAL: all the tree's CPUs would
write one buffer), and `PERF_EVENT_IOC_SET_OUTPUT` from one CPU's event to another's is
EINVAL too (both tried on Linux 6.18). Inherited copies write to their parent event's
ring, so each CPU's ring gets the records of every task of the tree while on that CPU.
A per-cpu ring is written by that CPU only, so its records are in time order and a
switch-in pairs with the next switch-out of the same tid *in the same ring*; rings are
not ordered among themselves, which is why stretches are keyed by (cpu, tid).

Nothing missed at the start: `inherit` follows only what is created *after* the open,
and an event opened on a pid follows that one thread. So `open(pid)` must happen while the
pid has one thread and no child, and `open()` checks it (ValueError otherwise: a late
open is an error, not a silent gap). The server should spawn the run's main so that it
first blocks on a gate (a read of a pipe it inherited), open the recorder on its pid, then
write to the gate. Chosen over "the run's main opens it on itself and sends the fds with
SCM_RIGHTS" because the fds, the rings and the draining stay in one process, the run's
main needs no perf code at all, and the gate opens the same way when perf is refused.
What is missed is the main's own interpreter start-up before the gate, before the run's t0.
(Opened on a pid that is running, its first record is a switch-out with no switch-in: that
stretch is taken to start when the event of its core was enabled.)

The end of a task. Its per-task events are torn down with it, and the kernel writes its
PERF_RECORD_EXIT then (on 6.18 right after sched_process_exit, before exit_mm(),
exit_files(), exit_notify()): no switch of it is recorded after that. But it runs on,
through one or several stretches (preempted, woken on another core), until its final
switch-out in state Z: ~1 ms for a forked Python, more with memory to give back (32 MB:
~2.7 ms). So, where the kernel allows CPU-wide events (root, CAP_PERFMON or
CAP_SYS_ADMIN, or kernel.perf_event_paranoid <= 0), open() also opens one per CPU (pid
-1, `context_switch`; no `inherit` or `task`, there being no task to follow), whose
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
a few C-level operations that no record in them is a tail's (~25 ns a record, not ~250).

Where only per-task events are allowed (kernel.perf_event_paranoid 2 and no capability:
the usual laptop; `exit_tails` False, `wide_refused` says why), each exiting task's
stretch ends at its EXIT record, and its exit teardown after it is not recorded: ~1 ms
per process (measured, ticket_rush's 100 buyers: 1 ms of each buyer's 2.8, -27 % of
their time; gil's processes -0.3 %), up to a few ms with much memory to unmap; a
thread's exit, ~30 µs.

Losses are never hidden: a full ring makes the kernel drop records and later write a
PERF_RECORD_LOST with their count; `lost` adds them up. A stretch whose switch-in was
before a loss on that CPU may have lost its switch-out, so it is not paired across the
gap: it is dropped and counted in `broken`, with any switch-out that has no switch-in.

A CPU-wide ring losing records (`lost`, counted only while a tail is followed: the rest
is not the tree's) cuts the tail on that core (`broken`).

Measured (tests/test_switches.py, a 2-core VM): per thread or process, the spans' total
agrees with `perf record -e dummy:u --switch-events` on the same run within 0.03 %, and
with the kernel's run time (schedstat) within 0.3 % on a quiet machine, 1.6 % at a load
average of 10: perf stamps a switch at its own hooks, schedstat at update_curr(), and the
scheduler's path between them (microseconds, tens when the run queues are long) is
counted on opposite sides. An exited child, against its schedstat read as a zombie:
within 0.2-1.2 % with the tails, -4.5 to -6 % without (30 ms of work, 32 MB to unmap).
ticket_rush's 100 buyers against tests/kernel_trace.py: -27.5 % without the tails,
-0.9 to +1.4 % with them. Cost (bench/switch_cost.py, drained at 100 Hz like the
sampler): 0.003-0.010 CPU s/s with the CPU-wide rings at a few thousand switches a
second on the machine, against 0.0015-0.0064 per-task only; 0.032 against 0.006 while
two processes outside the run switch ~290,000 times a second.

Memory order: the ring is read as perf's tools do (load data_head, read barrier, read the
records, store data_tail). On x86-64 (TSO) loads are not reordered with older loads nor
stores with older loads, so plain 8-byte loads and stores in order are the barriers; that is
one reason (with the syscall number) this module says "not available" on other machines.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct
import time
from dataclasses import dataclass
from typing import NamedTuple

SYS_PERF_EVENT_OPEN = 298  # x86_64
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_DUMMY = 9
PERF_SAMPLE_TID = 1 << 1
PERF_SAMPLE_TIME = 1 << 2
PERF_SAMPLE_CPU = 1 << 7
PERF_FLAG_FD_CLOEXEC = 1 << 3
CLOCK_MONOTONIC = 1
# perf_event_attr bit fields, in the order of linux/perf_event.h
ATTR_DISABLED, ATTR_INHERIT = 1 << 0, 1 << 1
ATTR_EXCLUDE_KERNEL, ATTR_EXCLUDE_HV = 1 << 5, 1 << 6
ATTR_TASK, ATTR_SAMPLE_ID_ALL = 1 << 13, 1 << 18
ATTR_USE_CLOCKID, ATTR_CONTEXT_SWITCH = 1 << 25, 1 << 26
PER_TASK = (ATTR_DISABLED | ATTR_INHERIT | ATTR_EXCLUDE_KERNEL | ATTR_EXCLUDE_HV | ATTR_TASK
            | ATTR_SAMPLE_ID_ALL | ATTR_USE_CLOCKID | ATTR_CONTEXT_SWITCH)
CPU_WIDE = (ATTR_DISABLED | ATTR_EXCLUDE_KERNEL | ATTR_EXCLUDE_HV | ATTR_SAMPLE_ID_ALL
            | ATTR_USE_CLOCKID | ATTR_CONTEXT_SWITCH)
PERF_EVENT_IOC_ENABLE = 0x2400

PERF_RECORD_LOST, PERF_RECORD_EXIT, PERF_RECORD_FORK, PERF_RECORD_SWITCH = 2, 4, 7, 14
PERF_RECORD_SWITCH_CPU_WIDE = 15
MISC_SWITCH_OUT, MISC_SWITCH_OUT_PREEMPT = 0x2000, 0x4000
DEAD_TID = 0xFFFF_FFFF  # perf's tid (-1) for a task whose pid is already released
# An exited task not seen on a core for this long is taken to be gone: its tid is no longer
# looked for in the CPU-wide records (its last switch-out cannot be told from a sleep).
TAIL_IDLE_NS = 1_000_000_000
# Each CPU-wide ring: 1 MiB, ~26,000 records, 0.2 s of a core switching 130,000 times a
# second (two processes ping-ponging a byte). Only privileged users get these events, and
# perf_event_mlock_kb does not limit them.
WIDE_DATA_PAGES = 256
WIDE_SIZE = 40  # a PERF_RECORD_SWITCH_CPU_WIDE with the sample id

CAP_SYS_ADMIN, CAP_PERFMON = 21, 38
DATA_HEAD, DATA_TAIL = 1024, 1032  # offsets in struct perf_event_mmap_page
PAGE = mmap.PAGESIZE

_HEADER = struct.Struct("<IHH")  # type, misc, size
_SAMPLE_ID = struct.Struct("<IIQI")  # pid, tid, time, cpu (then a reserved u32)
_LOST = struct.Struct("<QQ")  # id, lost
_TASK = struct.Struct("<IIII")  # pid, ppid, tid, ptid (then time, then the sample id)
_U64 = struct.Struct("Q")  # native: one aligned 8-byte load or store (memcpy), not bytewise


class _Attr(ctypes.Structure):
    """struct perf_event_attr up to PERF_ATTR_SIZE_VER8 (136 bytes)."""

    _fields_ = [
        ("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64), ("config2", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64), ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32), ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64), ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16), ("reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32), ("reserved_3", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64), ("config3", ctypes.c_uint64),
    ]


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


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _perf_event_open(pid: int, cpu: int, flags: int = PER_TASK) -> int:
    """One context-switch event on `pid` (0: the caller; -1 with CPU_WIDE: every task) and
    `cpu`; an fd, or OSError."""
    attr = _Attr(type=PERF_TYPE_SOFTWARE, size=ctypes.sizeof(_Attr), config=PERF_COUNT_SW_DUMMY,
                 sample_type=PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU,
                 clockid=CLOCK_MONOTONIC, flags=flags)
    fd = _libc.syscall(ctypes.c_long(SYS_PERF_EVENT_OPEN), ctypes.byref(attr), ctypes.c_int(pid),
                       ctypes.c_int(cpu), ctypes.c_int(-1), ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open(pid={pid}, cpu={cpu}): {os.strerror(err)}")
    return int(fd)


def online_cpus() -> list[int]:
    """The CPUs the kernel has online, from /sys ("0-1,4" -> [0, 1, 4])."""
    with open("/sys/devices/system/cpu/online") as f:
        text = f.read().strip()
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def _paranoid() -> int | None:
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _capabilities() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def refusal_reason(err: int, paranoid: int | None) -> str:
    """What a teacher can do about a refused perf_event_open (errno `err`)."""
    fix = ("for exact core lanes run: sudo sysctl kernel.perf_event_paranoid=2, "
           "or give procscope CAP_PERFMON (sudo setcap cap_perfmon+ep on its python)")
    if err in (errno.EACCES, errno.EPERM):
        if paranoid is not None and paranoid > 2:
            return f"kernel.perf_event_paranoid is {paranoid}; {fix}"
        return (f"perf_event_open was refused ({errno.errorcode.get(err, err)}) although "
                f"kernel.perf_event_paranoid is {paranoid}: a container's seccomp profile or "
                f"a security module blocks it; allow perf_event_open there, or {fix}")
    if err in (errno.ENOSYS, errno.ENOENT, errno.ENODEV):
        return "this kernel has no perf events (CONFIG_PERF_EVENTS); core lanes are sampled"
    if err == errno.EINVAL:
        return ("this kernel does not take context-switch records with a CLOCK_MONOTONIC "
                "clock (Linux 4.3 or later needed); core lanes are sampled")
    return f"perf_event_open failed: {os.strerror(err)}; core lanes are sampled"


def availability() -> tuple[bool, str]:
    """Can this process record context switches here? Tried for real, on itself."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False, f"exact core lanes need Linux on x86_64, not {platform.machine()}"
    paranoid = _paranoid()
    try:
        fd = _perf_event_open(0, online_cpus()[0])
    except OSError as e:
        return False, refusal_reason(e.errno or 0, paranoid)
    try:
        mmap.mmap(fd, 2 * PAGE).close()
    except OSError as e:
        return False, (f"perf_event_open works but its ring buffer cannot be mapped ({e}); "
                       "raise kernel.perf_event_mlock_kb or RLIMIT_MEMLOCK")
    finally:
        os.close(fd)
    caps = _capabilities()
    if os.geteuid() == 0:
        who = "running as root"
    elif caps & (1 << CAP_PERFMON) or caps & (1 << CAP_SYS_ADMIN):
        who = "with CAP_PERFMON"
    else:
        who = f"kernel.perf_event_paranoid is {paranoid}"
    return True, f"exact: the kernel's context-switch records (perf_event_open, {who})"


@dataclass
class _Tail:
    """An exited task of the tree, followed in the CPU-wide records to its last switch-out."""

    pid: int
    exit_ns: int  # its PERF_RECORD_EXIT: CPU-wide records of its tid before this are not its
    last_ns: int  # its latest switch-out (or its EXIT), for TAIL_IDLE_NS


class SwitchRecorder:
    """The on-CPU stretches of one run's process tree, read from per-CPU rings.

    Not thread-safe: one thread calls open(), drain() and close(). `data_pages` is each
    ring's size in pages (a power of two); an unprivileged user's rings count against
    kernel.perf_event_mlock_kb (516 KiB per CPU by default), so open() halves it, down to
    8 pages, if the kernel refuses the mapping.

    `cpu_wide`: follow exited tasks to their last switch-out with CPU-wide events (module
    docstring, "The end"): None (the default) where the kernel allows it, True required
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
        self.lost = 0  # records the kernel dropped because a ring was full
        self.broken = 0  # stretches not reported: cut by a loss, or a switch-out without an in
        self.forks = 0
        self.exits = 0
        # (pid, ppid) of each new process of the tree (a FORK with pid == tid), until
        # new_processes() takes them: the sampler follows them without scanning /proc.
        self._new: list[tuple[int, int]] = []
        self.tail_spans = 0  # stretches of exited tasks, closed by a CPU-wide switch-out
        self._rings: list[tuple[int, int, mmap.mmap]] = []  # (cpu, fd, ring)
        self._wide: list[tuple[int, int, mmap.mmap]] = []  # the CPU-wide events, if any
        self._oncpu: dict[tuple[int, int], tuple[int, int]] = {}  # (cpu, tid) -> (pid, t0)
        self._tails: dict[int, _Tail] = {}  # tid -> exited task still followed
        self._tail_on: dict[int, tuple[int, int]] = {}  # cpu -> (tid, t0): a tail on a core
        # cpu -> [(exit_ns, tid, t0)]: EXITs read, not yet placed among that CPU's records
        self._exiting: dict[int, list[tuple[int, int, int]]] = {}
        self._next_expiry = 0
        self._root = 0
        self._enabled_ns: dict[int, int] = {}  # cpu -> when its event was enabled
        self._root_unseen: set[int] = set()  # CPUs whose ring has no record of the root yet

    def open(self, pid: int) -> None:
        """Follow `pid` and everything it creates from now on; `pid` has one thread, no child."""
        if self._rings:
            raise RuntimeError("this recorder is already open")
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        children = _children(pid)
        if tasks != [pid] or children:
            raise ValueError(
                f"pid {pid} already has threads {[t for t in tasks if t != pid]} and children "
                f"{children} that would not be recorded: open before it starts any")
        pages = self.data_pages
        try:
            for cpu in online_cpus():
                fd = _perf_event_open(pid, cpu)
                while True:
                    try:
                        ring = mmap.mmap(fd, (1 + pages) * PAGE)
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
            self._root, self._root_unseen = pid, {cpu for cpu, _, _ in self._rings}
            # Enabled only once every CPU's event exists, so no CPU starts late (the
            # CPU-wide ones first: every exit the per-task ones see has its tail). A running
            # pid's event is switched on by an IPI to its core within the ioctl.
            for _, fd, _ in self._wide:
                _ioctl(fd, PERF_EVENT_IOC_ENABLE)
            for cpu, fd, _ in self._rings:
                self._enabled_ns[cpu] = time.monotonic_ns()
                _ioctl(fd, PERF_EVENT_IOC_ENABLE)
        except BaseException:
            self.close()
            raise

    def _open_wide(self, pages: int) -> None:
        """One CPU-wide event and ring per CPU, or none (and `wide_refused` says why)."""
        try:
            for cpu in online_cpus():
                fd = _perf_event_open(-1, cpu, CPU_WIDE)
                try:
                    ring = mmap.mmap(fd, (1 + pages) * PAGE)
                except OSError:
                    os.close(fd)
                    raise
                self._wide.append((cpu, fd, ring))
        except OSError as e:
            for _, fd, ring in self._wide:
                ring.close()
                os.close(fd)
            self._wide = []
            if self.cpu_wide:
                raise
            self.wide_refused = (f"CPU-wide context-switch events refused ({e}): they need "
                                 "CAP_PERFMON or kernel.perf_event_paranoid <= 0")
            return
        self.exit_tails = True

    def drain(self) -> list[Span]:
        """The stretches finished since the last drain, by t0. Cheap: call it often."""
        now = time.monotonic_ns()
        # The CPU-wide rings are read first: a tail's records in them are after its EXIT,
        # so that EXIT is in the per-task rings read next, and its tid is known in time.
        wide = [(cpu, _read_ring(ring)) for cpu, _, ring in self._wide]
        spans: list[Span] = []
        for cpu, _, ring in self._rings:
            data = _read_ring(ring)
            if data:
                self._parse(cpu, data, spans)
        if self._tails:  # else nothing in them is the tree's: no need to read them
            for cpu, data in wide:
                self._parse_wide(cpu, data, spans)
            if now >= self._next_expiry:
                self._expire(now)
        spans.sort(key=lambda s: s.t0_ns)
        return spans

    def new_processes(self) -> list[tuple[int, int]]:
        """(pid, ppid) of the processes the tree created, read by the drains since the last
        call. Complete unless records were lost (`lost`)."""
        new, self._new = self._new, []
        return new

    def running(self) -> list[Running]:
        """Threads switched in and not out yet, as of the last drain."""
        out = [Running(pid, tid, cpu, t0) for (cpu, tid), (pid, t0) in self._oncpu.items()]
        out += [Running(self._tails[tid].pid, tid, cpu, t0)
                for cpu, (tid, t0) in self._tail_on.items() if tid in self._tails]
        return out

    def close(self) -> None:
        """Release the rings and the events; stretches still open are not reported."""
        for _, fd, ring in self._rings + self._wide:
            ring.close()
            os.close(fd)
        self._rings, self._wide = [], []
        self._oncpu.clear()
        self._tails.clear()
        self._tail_on.clear()
        self._exiting.clear()

    def __enter__(self) -> SwitchRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _parse(self, cpu: int, data: bytes, spans: list[Span]) -> None:
        oncpu, tails = self._oncpu, self._tails
        off, end = 0, len(data)
        while off < end:
            kind, misc, size = _HEADER.unpack_from(data, off)
            if size < _HEADER.size + _SAMPLE_ID.size:  # the kernel never writes one
                raise RuntimeError(f"perf record of size {size} at offset {off} on cpu {cpu}")
            if cpu in self._root_unseen and kind != PERF_RECORD_LOST:
                self._first_of_root(cpu, kind, misc, data, off + size - 24)
            if kind == PERF_RECORD_SWITCH:
                pid, tid, t, _ = _SAMPLE_ID.unpack_from(data, off + 8)
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
                # (module docstring, "The end").
                pid, _, tid, _ = _TASK.unpack_from(data, off + 8)
                t = _U64.unpack_from(data, off + 24)[0]
                start = oncpu.pop((cpu, tid), None)
                if self._wide:  # it runs on, on this core (it wrote this record here)
                    tails[tid] = _Tail(pid, t, t)
                    self._exiting.setdefault(cpu, []).append(
                        (t, tid, t if start is None else start[1]))
                elif start is not None:
                    spans.append(Span(pid, tid, cpu, start[1], t, False))
                self.exits += 1
            elif kind == PERF_RECORD_FORK:
                self.forks += 1
                pid, ppid, tid, _ = _TASK.unpack_from(data, off + 8)
                if pid == tid:
                    self._new.append((pid, ppid))
                tail = tails.get(tid)
                if tail is not None and _U64.unpack_from(data, off + 24)[0] > tail.exit_ns:
                    del tails[tid]  # a new task of the tree with the same tid
            elif kind == PERF_RECORD_LOST:
                self.lost += _LOST.unpack_from(data, off + 8)[1]
                self._root_unseen.discard(cpu)
                cut = [key for key in oncpu if key[0] == cpu]
                for key in cut:
                    del oncpu[key]
                self.broken += len(cut)
            off += size

    def _parse_wide(self, cpu: int, data: bytes, spans: list[Span]) -> None:
        """One CPU's CPU-wide records: only the stretches of exited tasks of the tree.

        A ring is one core's switches in order, so the first switch-out after a tail's
        switch-in (or after its EXIT, written on that core) is its own, whatever tid it
        carries: an exited thread's pid is released before its last schedule(), and perf
        then writes DEAD_TID. The EXITs just read from the per-task ring of this CPU are
        put in their place among these records, by time.
        """
        tails, on = self._tails, self._tail_on
        if cpu not in on and cpu not in self._exiting and _none_of(tails, data):
            return  # the common case, checked ~10 times faster than it is walked
        exiting, i = self._exiting.pop(cpu, []), 0
        off, end = 0, len(data)
        while off < end:
            kind, misc, size = _HEADER.unpack_from(data, off)
            if size < _HEADER.size + _SAMPLE_ID.size:  # the kernel never writes one
                raise RuntimeError(f"perf record of size {size} at offset {off} on cpu {cpu}")
            _, tid, t, _ = _SAMPLE_ID.unpack_from(data, off + size - 24)
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
                self.lost += _LOST.unpack_from(data, off + 8)[1]
                if on.pop(cpu, None) is not None:
                    self.broken += 1
            off += size
        for exit_ns, tid, t0 in exiting[i:]:  # after the last record read: on the core now
            self._tail_starts(cpu, exit_ns, tid, t0)

    def _tail_starts(self, cpu: int, exit_ns: int, tid: int, t0: int) -> None:
        """An exited task is on `cpu` (it wrote its EXIT there), since t0: its stretch goes
        on until the CPU's next switch-out."""
        if tid not in self._tails:  # its tid was taken by a new task of the tree since
            return
        if cpu in self._tail_on:  # the previous tail's switch-out is gone
            self.broken += 1
        self._tail_on[cpu] = (tid, t0)

    def _expire(self, now: int) -> None:
        """Forget the exited tasks off every core for TAIL_IDLE_NS: they are gone."""
        on = {tid for tid, _ in self._tail_on.values()}
        for tid in [tid for tid, tail in self._tails.items()
                    if tid not in on and now - tail.last_ns > TAIL_IDLE_NS]:
            del self._tails[tid]
        self._next_expiry = now + TAIL_IDLE_NS // 10

    def _first_of_root(self, cpu: int, kind: int, misc: int, data: bytes, sample_id: int) -> None:
        """In a ring with no record of the root yet: if this one is the root's and is not
        its switch-in, the root was on this core when the events were enabled (a recorder
        opened on a running pid), so its stretch there starts then."""
        pid, tid, _, _ = _SAMPLE_ID.unpack_from(data, sample_id)
        if tid != self._root:
            return
        self._root_unseen.discard(cpu)
        if kind != PERF_RECORD_SWITCH or misc & MISC_SWITCH_OUT:
            self._oncpu[(cpu, tid)] = (pid, self._enabled_ns[cpu])


def _none_of(tids: dict[int, _Tail], data: bytes) -> bool:
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


def _read_ring(ring: mmap.mmap) -> bytes:
    """Take every record from a ring (copied out, wrap-around joined) and free its space."""
    head = _U64.unpack_from(ring, DATA_HEAD)[0]  # then rmb: a no-op on x86-64 (TSO)
    tail = _U64.unpack_from(ring, DATA_TAIL)[0]
    if head == tail:
        return b""
    size = len(ring) - PAGE
    start, stop = PAGE + tail % size, PAGE + head % size
    if head - tail > size:  # cannot happen: the kernel does not overwrite unread data
        raise RuntimeError(f"perf ring overrun: head {head}, tail {tail}, size {size}")
    data = ring[start:stop] if start < stop else ring[start:] + ring[PAGE:stop]
    _U64.pack_into(ring, DATA_TAIL, head)
    return data


def _ioctl(fd: int, request: int) -> None:
    if _libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_int(0)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan /proc
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            found.append(int(entry))
                except (OSError, IndexError, ValueError):
                    continue
        return found

