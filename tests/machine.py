"""What the rest of the machine did meanwhile, for tests whose claim needs free cores.

Runs in pytest. The machines these tests run on are shared: a claim such as "two
processes run on two cores at once" is only the lesson's to keep when the cores were free.
"""

from __future__ import annotations

import os


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (/proc/stat, all cores)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def steal_s() -> float:
    """CPU seconds the hypervisor has given to others since boot (/proc/stat's steal): a
    VM's scheduler leaves it out of a task's run time, while a clock read keeps counting."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
