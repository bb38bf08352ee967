"""A lesson whose primitives report on their own, without one hand-written event: its
spec's `instrument_prims` (enabled by PROCSCOPE_SELFTEST_PRIMS=1)."""

from __future__ import annotations

import multiprocessing
from typing import Any

from procscope.experiments.spec import Experiment, Param


def _worker(lock: Any, queue: Any, n: int) -> None:
    """Runs in each worker."""
    with lock:
        queue.put(n * n)


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    lock = multiprocessing.Lock()
    results: Any = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_worker, args=(lock, results, n))
               for n in range(params.workers)]
    for worker in workers:
        worker.start()
    squares = sorted(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return {"squares": squares}


SPEC = Experiment(
    id="prims_selftest", title="Primitives that report themselves",
    summary="A Lock and a Queue shared by workers, drawn with no event of the lesson's own.",
    section="-", lesson="Its Lock and Queue report what they do (instrument_prims).",
    lesson_zh="", code="with lock:\n    queue.put(n * n)",
    params={"workers": Param(3, ge=1, le=8, description="worker processes")}, main=main,
    instrument_prims=True,
)
