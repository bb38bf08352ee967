"""A load generator, not a lesson: workers emit events as fast as they can, or at a rate.

Enabled with PROCSCOPE_SELFTEST=1, for the benchmarks (bench/) and the tests.
"""

from __future__ import annotations

import time
from multiprocessing import Process
from typing import Any

from procscope.experiments.spec import Experiment, Param
from procscope.pipe.reporter import emit


def flood(events: int, rate: float, payload: int) -> None:
    """Runs in each worker: emit `events` events, paced at `rate` per second if rate > 0."""
    pad = "x" * payload
    start = time.monotonic()
    for i in range(events):
        if rate > 0:
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        emit("bench.tick", i=i, pad=pad)


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    workers = [Process(target=flood, args=(params.events, params.rate, params.payload),
                       name=f"worker-{i + 1}") for i in range(params.processes)]
    start = time.monotonic()
    for p in workers:
        p.start()
    for p in workers:
        p.join()
    return {"elapsed": time.monotonic() - start,
            "events": params.events * params.processes}


SPEC = Experiment(
    id="flood", title="Event flood (benchmark)", summary="Workers emit events as fast as "
    "they can, or at a set rate.", section="-", lesson="A load generator for the benchmarks.",
    lesson_zh="", code="emit('bench.tick', i=i)",
    params={
        "processes": Param(4, "Emitting processes", ge=1, le=500),
        "events": Param(10000, "Events per process", ge=1, le=1_000_000),
        "rate": Param(0.0, "Events per second per process; 0 = as fast as possible",
                      ge=0, le=100_000),
        "payload": Param(0, "Extra bytes in each event", ge=0, le=3000),
    },
    main=main,
)
