"""The tutorial's first claim: CPU-bound threads take turns on one core, processes do not."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from multiprocessing import Barrier, Process, Queue
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, fixed, is_number, number, say, seconds
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

STEPS = 10  # progress events per worker: enough to see the turns, few enough to read


def burn(name: str, cpu_seconds: float, clock: Callable[[], float]) -> tuple[float, float, float]:
    """Runs in each worker (a thread or a process): pure-Python work for `cpu_seconds`.

    `clock` is this worker's own CPU clock (thread_time for a thread, process_time for a
    process): time spent waiting for the GIL is not CPU time, so a thread that has to take
    turns needs longer on the wall clock to burn its share. Returns (CPU seconds used,
    monotonic time at the start, monotonic time at the end).
    """
    print("%s is running in pid %s" % (name, os.getpid()))
    emit("task.start", worker=name, cpu_seconds=round(cpu_seconds, 4))
    start_cpu = clock()
    wall = time.monotonic()
    done = 0
    while True:
        x = 0
        for i in range(20_000):  # the work: a plain Python loop, holding the GIL throughout
            x += i * i
        used = clock() - start_cpu
        if used >= cpu_seconds:
            break
        if used >= cpu_seconds * (done + 1) / STEPS:
            done += 1
            emit("task.progress", worker=name, percent=done * 100 // STEPS,
                 cpu=round(used, 4), wall=round(time.monotonic() - wall, 4))
    used = clock() - start_cpu
    wall_used = time.monotonic() - wall
    emit("task.end", worker=name, cpu=round(used, 4), wall=round(wall_used, 4))
    print("%s done: %.2f s of CPU in %.2f s" % (name, used, wall_used))
    return used, wall, time.monotonic()


def burn_in_thread(name: str, cpu_seconds: float, go: Any, out: list[Any]) -> None:
    """Runs in each worker thread of the experiment's main process."""
    go.wait()
    out.append(burn(name, cpu_seconds, time.thread_time))


def burn_in_process(name: str, cpu_seconds: float, go: Any, out: Any) -> None:
    """Runs in each worker process."""
    go.wait()
    out.put(burn(name, cpu_seconds, time.process_time))


def start_together(workers: list[Any], go: Any) -> None:
    """Runs in the experiment's main process: starts the workers (threads or processes),
    and lets them go at once when every one waits at `go`."""
    for w in workers:
        w.start()
    go.wait()
    emit("workers.go", workers=len(workers))


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    cpu_seconds = params.work * params.time_scale
    per_worker: list[tuple[float, float, float]] = []
    # The clock starts when every worker is up and waiting at the barrier, so that the
    # start-up of a spawned process (~0.1 s) does not blur the comparison.
    if params.mode == "threads":
        go: Any = threading.Barrier(params.workers + 1)
        threads = [threading.Thread(target=burn_in_thread, name="thread-%d" % (i + 1),
                                    args=("thread-%d" % (i + 1), cpu_seconds, go, per_worker))
                   for i in range(params.workers)]
        start_together(threads, go)
        for t in threads:
            t.join()
    else:
        go = Barrier(params.workers + 1)
        results: Any = Queue()
        processes = [Process(target=burn_in_process, name="worker-%d" % (i + 1),
                             args=("worker-%d" % (i + 1), cpu_seconds, go, results))
                     for i in range(params.workers)]
        start_together(processes, go)
        for _ in processes:  # drain before join: a process that put cannot exit before
            per_worker.append(results.get())
        for p in processes:
            p.join()
    # CLOCK_MONOTONIC is system-wide, so the workers' times compare with each other. The
    # clock starts when the first worker starts working, not when this process gets past
    # the barrier: it may get a core only after the workers (which hold both).
    elapsed = max(end for _, _, end in per_worker) - min(begin for _, begin, _ in per_worker)
    total = sum(cpu for cpu, _, _ in per_worker)
    speedup = total / elapsed if elapsed else 0.0
    print("%d %s, %.2f s of CPU in %.2f s: %.2f cores busy on average"
          % (params.workers, params.mode, total, elapsed, speedup))
    return {
        "mode": params.mode,
        "elapsed": round(elapsed, 4),
        "cpu_seconds": round(total, 4),
        "speedup": round(speedup, 3),
        "per_worker_cpu": [round(cpu, 4) for cpu, _, _ in per_worker],
        "cores": os.cpu_count(),
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: CPU-seconds per elapsed second, threads against processes."""
    if not is_number(r.get("speedup")):
        return None
    return {"text": say(WORDS["text"][lang], mode=r.get("mode"),
                        cpu=seconds(r.get("cpu_seconds"), lang),
                        elapsed=seconds(r.get("elapsed"), lang), speedup=fixed(r["speedup"], 2),
                        cores=number(r.get("cores"))),
            "why": WORDS["why_threads" if r.get("mode") == "threads"
                            else "why_processes"][lang],
            "bad": False}


SPEC = Experiment(
    id="gil", words=WORDS, section="multiprocessing模块介绍",
    code="""def work():
    x = 0
    for i in range(N):   # pure Python: holds the GIL all along
        x += i * i

# threads: one process, one GIL, one core at a time
ts = [Thread(target=work) for _ in range(2)]
# processes: one interpreter (and GIL) each, both cores at once
ps = [Process(target=work) for _ in range(2)]""",
    params={
        "mode": Param("processes", choices=("threads", "processes")),
        "workers": Param(2, ge=1, le=16),
        "work": Param(2.0, ge=0.01, le=30),
    },
    key_moments=(
        KeyMoment({"kind": "task.start", "nth": 1}, {"kind": "task.end", "nth": -1},
                  "{result.mode}: {result.cpu_seconds} CPU-s in {s} s, speedup "
                  "{result.speedup}",
                  label_zh="{result.mode}：{s} 秒内用了 {result.cpu_seconds} CPU 秒，加速比 "
                           "{result.speedup}"),
    ),
    main=main,
    outcome=outcome,
    compare=({"mode": "threads"}, {"mode": "processes"}),
    compare_sequential=True,  # CPU-bound: at once, each side would get half the cores
)
