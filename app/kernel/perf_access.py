"""Who may record context switches here, and what a teacher can do when refused.

Runs in the server. Per-task events are allowed with kernel.perf_event_paranoid <= 2 (the
usual default), CAP_PERFMON, CAP_SYS_ADMIN or root; CPU-wide events (an exited task's
last stretches, `exit_tails`) need the capability, root, or perf_event_paranoid <= 0.
"""

from __future__ import annotations

import errno
import mmap
import os
import platform

from procscope.kernel.perf_abi import online_cpus, perf_event_open
from procscope.kernel.perf_ring import PAGE

CAP_SYS_ADMIN, CAP_PERFMON = 21, 38


def paranoid() -> int | None:
    """kernel.perf_event_paranoid, or None where it cannot be read."""
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def capabilities() -> int:
    """This process's effective capabilities, as a bit mask."""
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
    level = paranoid()
    try:
        fd = perf_event_open(0, online_cpus()[0])
    except OSError as e:
        return False, refusal_reason(e.errno or 0, level)
    try:
        mmap.mmap(fd, 2 * PAGE).close()
    except OSError as e:
        return False, (f"perf_event_open works but its ring buffer cannot be mapped ({e}); "
                       "raise kernel.perf_event_mlock_kb or RLIMIT_MEMLOCK")
    finally:
        os.close(fd)
    caps = capabilities()
    if os.geteuid() == 0:
        who = "running as root"
    elif caps & (1 << CAP_PERFMON) or caps & (1 << CAP_SYS_ADMIN):
        who = "with CAP_PERFMON"
    else:
        who = f"kernel.perf_event_paranoid is {level}"
    return True, f"exact: the kernel's context-switch records (perf_event_open, {who})"


CPU_WIDE_REFUSED = ("CPU-wide context-switch events refused ({error}): they need "
                    "CAP_PERFMON or kernel.perf_event_paranoid <= 0")
