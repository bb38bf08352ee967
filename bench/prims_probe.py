"""The program bench.prims_cost times, plainly and under `procscope trace`.

    python bench/prims_probe.py [--loop N]

Runs in the program's main process. Prints one line of JSON: ns per uncontended Lock
acquire+release pair and per Queue put+get pair while their events are sent (fewer pairs
than the rate budget's burst), and the seconds of a loop of N uncontended acquire+release
pairs (past the budget, counted instead).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from typing import Any

LOCK_PAIRS = 2000  # 4,000 events: within the budget's first burst (5,000)
QUEUE_PAIRS = 200


def lock_pairs(lock: Any, n: int) -> float:
    acquire, release = lock.acquire, lock.release
    started = time.thread_time_ns()
    for _ in range(n):
        acquire()
        release()
    return (time.thread_time_ns() - started) / n


def main(loop: int) -> None:
    lock = mp.Lock()
    pair_ns = lock_pairs(lock, LOCK_PAIRS)
    q: Any = mp.Queue()
    q.put(0)
    q.get()  # the feeder thread started
    started = time.thread_time_ns()
    for i in range(QUEUE_PAIRS):
        q.put(i)
        q.get()
    queue_ns = (time.thread_time_ns() - started) / QUEUE_PAIRS
    spin = mp.Lock()
    began = time.thread_time()
    for _ in range(loop):
        spin.acquire()
        spin.release()
    loop_s = time.thread_time() - began
    print(json.dumps({"lock_pair_ns": pair_ns, "queue_pair_ns": queue_ns, "loop_s": loop_s,
                      "loop": loop}))


if __name__ == "__main__":
    main(int(sys.argv[sys.argv.index("--loop") + 1]) if "--loop" in sys.argv else 1_000_000)
