"""The program bench.prims_cost times, plainly and under `procscope trace`.

    python bench/prims_probe.py [--loop N]

Runs in the program's main process. Prints one line of JSON: per uncontended Lock
acquire+release pair and per Queue put+get pair, while their events are sent (fewer pairs
than the rate budget's first burst), ns of wall time and of this thread's CPU time; and a
loop of N uncontended acquire+release pairs (past the budget: counted instead), s.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from typing import Any

LOCK_PAIRS = 2000  # 4,000 events: within the budget's first burst (5,000)
QUEUE_PAIRS = 200  # 400 more


def timed(work: Callable[[], None]) -> tuple[int, int]:
    """(wall ns, this thread's CPU ns) of one call."""
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    work()
    return time.perf_counter_ns() - wall, time.thread_time_ns() - cpu


def main(loop: int) -> None:
    lock = mp.Lock()

    def lock_pairs() -> None:
        acquire, release = lock.acquire, lock.release
        for _ in range(LOCK_PAIRS):
            acquire()
            release()

    q: Any = mp.Queue()
    q.put(0)
    q.get()  # the feeder thread started

    def queue_pairs() -> None:
        for i in range(QUEUE_PAIRS):
            q.put(i)
            q.get()

    spin = mp.Lock()

    def hot_loop() -> None:
        for _ in range(loop):
            spin.acquire()
            spin.release()

    lock_wall, lock_cpu = timed(lock_pairs)
    queue_wall, queue_cpu = timed(queue_pairs)
    loop_wall, loop_cpu = timed(hot_loop)
    print(json.dumps({
        "lock_pair_ns": lock_wall / LOCK_PAIRS, "lock_pair_cpu_ns": lock_cpu / LOCK_PAIRS,
        "queue_pair_ns": queue_wall / QUEUE_PAIRS,
        "queue_pair_cpu_ns": queue_cpu / QUEUE_PAIRS,
        "loop_s": loop_wall / 1e9, "loop_cpu_s": loop_cpu / 1e9, "loop": loop}))


if __name__ == "__main__":
    main(int(sys.argv[sys.argv.index("--loop") + 1]) if "--loop" in sys.argv else 1_000_000)
