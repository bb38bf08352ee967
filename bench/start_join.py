"""A plain program that starts and joins 100 forked processes, and prints how long that
took: what bench.limits times as `python bench/start_join.py` and under `procscope trace`.

Runs as its own program (its main process, and 100 fork children that do nothing). It
imports nothing of procscope: under `procscope trace` the reporter is armed by the
trace's sitecustomize, as for any user's program.
"""

import multiprocessing
import sys
import time


def nothing() -> None:
    """Runs in each child: nothing, so only starting and joining is timed."""


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    children = [multiprocessing.Process(target=nothing) for _ in range(n)]
    start = time.monotonic()
    for child in children:
        child.start()
    for child in children:
        child.join()
    print(f"elapsed {time.monotonic() - start:.6f}", flush=True)
