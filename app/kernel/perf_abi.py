"""The part of linux/perf_event.h procscope uses: one context-switch event, its records.

Runs in the server (or any process that watches a run). Standard library only: ctypes for
the syscall and the ioctl, struct for the records.

Why written here, on the raw syscall. Looked for:
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
The CPU-wide variant (pid -1, `CPU_WIDE`) has no `inherit` or `task`, there being no task
to follow: its PERF_RECORD_SWITCH_CPU_WIDE records cover every switch on its core.
"""

from __future__ import annotations

import ctypes
import os
import struct

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
WIDE_SIZE = 40  # a PERF_RECORD_SWITCH_CPU_WIDE with the sample id

# The records, little-endian as x86_64 writes them.
HEADER = struct.Struct("<IHH")  # type, misc, size
SAMPLE_ID = struct.Struct("<IIQI")  # pid, tid, time, cpu (then a reserved u32)
SAMPLE_ID_FROM_END = 24  # the sample id is a record's last 24 bytes
LOST = struct.Struct("<QQ")  # id, lost
TASK = struct.Struct("<IIII")  # pid, ppid, tid, ptid (then time, then the sample id)
U64 = struct.Struct("Q")  # native: one aligned 8-byte load or store (memcpy), not bytewise


class PerfEventAttr(ctypes.Structure):
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


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def perf_event_open(pid: int, cpu: int, flags: int = PER_TASK) -> int:
    """One context-switch event on `pid` (0: the caller; -1 with CPU_WIDE: every task) and
    `cpu`; an fd, or OSError."""
    attr = PerfEventAttr(type=PERF_TYPE_SOFTWARE, size=ctypes.sizeof(PerfEventAttr),
                         config=PERF_COUNT_SW_DUMMY,
                         sample_type=PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU,
                         clockid=CLOCK_MONOTONIC, flags=flags)
    fd = _libc.syscall(ctypes.c_long(SYS_PERF_EVENT_OPEN), ctypes.byref(attr), ctypes.c_int(pid),
                       ctypes.c_int(cpu), ctypes.c_int(-1), ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open(pid={pid}, cpu={cpu}): {os.strerror(err)}")
    return int(fd)


def enable(fd: int) -> None:
    """Start an event opened disabled (PERF_EVENT_IOC_ENABLE)."""
    if _libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(PERF_EVENT_IOC_ENABLE), ctypes.c_int(0)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def online_cpus() -> list[int]:
    """The CPUs the kernel has online, from /sys ("0-1,4" -> [0, 1, 4])."""
    with open("/sys/devices/system/cpu/online") as f:
        text = f.read().strip()
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus
