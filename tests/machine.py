"""What the rest of the machine did meanwhile, for tests whose claim needs free cores.

Runs in pytest. The machines these tests run on are shared: a claim such as "two
processes run on two cores at once" is only the lesson's to keep when the cores were free.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable


def _cpu_seconds() -> list[float]:
    """/proc/stat's first line, all cores: user nice system idle iowait irq softirq steal..."""
    with open("/proc/stat") as f:
        return [int(x) / os.sysconf("SC_CLK_TCK") for x in f.readline().split()[1:]]


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (/proc/stat, all cores)."""
    cpu = _cpu_seconds()
    return sum(cpu[:8]) - cpu[3] - cpu[4]  # less idle and iowait


def steal_s() -> float:
    """CPU seconds the hypervisor has given to others since boot (/proc/stat's steal): a
    VM's scheduler leaves it out of a task's run time, while a clock read keeps counting."""
    return _cpu_seconds()[7]


def wait_off_core(pid: int, tid: int | None = None, timeout: float = 5.0,
                  meanwhile: Callable[[], object] | None = None) -> None:
    """Return once the thread has left its core for a wait (or, exited, for good), so that
    its schedstat is exact: the kernel adds a task's run time when it stops running and at
    each tick (4 ms at HZ=250), so read while it is on a core it lags by up to a tick.

    /proc/PID/task/TID/syscall says "running" for a runnable task (on a core, or preempted
    and queued); for a blocked or dead one the kernel first waits until it is off its core.
    `meanwhile` (a recorder's drain) is called every 20 ms while waiting.
    """
    path = f"/proc/{pid}/task/{pid if tid is None else tid}/syscall"
    deadline = time.monotonic() + timeout
    next_call = time.monotonic()
    while True:
        with open(path) as f:
            if not f.read().startswith("running"):
                return
        now = time.monotonic()
        if now > deadline:
            raise AssertionError(f"{path} still says running after {timeout} s")
        if meanwhile is not None and now >= next_call:
            meanwhile()
            next_call = now + 0.02
        time.sleep(0.0005)


# A server whose every process and thread runs at real-time priority (SCHED_FIFO 1, which
# the run's processes inherit at fork and keep across exec): no ordinary task on the
# machine, however many, can take a core from a worker that wants one (but for the
# kernel's share kept for ordinary tasks, sched_rt_runtime_us: 5 %). For tests whose claim
# is that work can run on several cores at once. Needs root (CAP_SYS_NICE).
REALTIME_SERVER = ["chrt", "--fifo", "1", sys.executable, "-m", "procscope"]
can_take_the_cores = os.geteuid() == 0


def raise_helper_threads(pid: int, priority: int = 2) -> None:
    """Put every thread of a REALTIME_SERVER but its main one (the event loop, which starts
    the runs) above the runs' processes: the sampler then takes its looks at the cores on
    time however busy the run keeps them, as it does on a quiet machine."""
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        if tid != pid:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
