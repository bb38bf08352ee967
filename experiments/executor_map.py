"""ProcessPoolExecutor.map: the tasks finish in any order, the results come back in input order."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.pool_watch import (
    LOST_TASK_MARKS,
    LostTaskWatch,
    arm_worker,
    lost_in_broken_pool,
    task_done,
    task_started,
)
from procscope.experiments.spec import Experiment, KeyMoment, LessonFailure, Param
from procscope.experiments.words import Lang, Outcome, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

# The tutorial sleeps random.randint(1, 3) seconds. A fixed pattern of the same three
# lengths (a third, all, two thirds of max_delay) keeps runs comparable and makes sure the
# early items are not always the first to finish: item 1 is slow, item 0 and 3 are quick.
PATTERN = [1, 3, 2, 1, 3, 1, 2, 3, 1, 2]


def delay_of(index: int, max_delay: float) -> float:
    return max_delay * PATTERN[index % len(PATTERN)] / 3


def work(n: int, seconds: float) -> tuple[int, int, int]:
    """Runs in each executor worker: one item. Returns (n**2, pid, finished_ns)."""
    task_started(n)  # so that the main can say which item was lost if this worker dies
    print("%s is running" % os.getpid())
    emit("task.start", task=n, label="item %d" % n, label_zh="第 %d 项" % n,
         seconds=round(seconds, 4))
    time.sleep(seconds)
    emit("task.end", task=n, value=n ** 2)
    task_done(n)
    return n ** 2, os.getpid(), time.monotonic_ns()


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    items = list(range(params.items))
    delays = [delay_of(i, params.max_delay) * params.time_scale for i in items]
    start_time = time.time()
    # A worker that dies mid-task breaks the executor (BrokenProcessPool), which does not
    # say which item was lost: the workers mark their items in the watch's arrays, handed
    # over by the executor's initializer (pool_watch.py).
    watch = LostTaskWatch(params.items, ["item %d" % i for i in items],
                          ["第 %d 项" % i for i in items])
    # The run's start method is the default context's, which ProcessPoolExecutor uses.
    p = ProcessPoolExecutor(params.workers,  # 不写默认是cpu的核数
                            initializer=arm_worker, initargs=watch.initargs)
    workers: list[Any] = []
    try:
        obj = p.map(work, items, delays)
        # map() submitted every item, and each submit starts a worker while there are
        # fewer than `workers`: these are all of them (the executor replaces none).
        workers = multiprocessing.active_children()
        emit("map.submitted", items=len(items))
        # Iterating the map is where the main waits: item i is handed over only once
        # item i is done, even if later items finished long before.
        returned = []
        for i, (value, pid, finished) in enumerate(obj):
            emit("map.result", task=i, value=value, pid=pid)
            returned.append((i, value, pid, finished))
    except BrokenProcessPool:
        p.shutdown()  # the executor joins its workers: their exit codes are known
        lost, lost_zh = lost_in_broken_pool(watch, workers)
        print(lost)
        raise LessonFailure(lost, lost_zh) from None
    finally:
        p.shutdown()
    used_time = time.time() - start_time
    results = [value for _, value, _, _ in returned]
    print(results)  # [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
    finish_order = [i for i, _, _, _ in sorted(returned, key=lambda r: r[3])]
    return {
        "results": results,
        "finish_order": finish_order,
        "out_of_order": finish_order != items,
        "worker_pids": sorted({pid for _, _, pid, _ in returned}),
        "delays": [round(d, 4) for d in delays],
        "elapsed": round(used_time, 4),
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: results in input order, whatever order the tasks finished in."""
    results = r.get("results")
    if not isinstance(results, list):
        return None
    late = WORDS["late"][lang] if r.get("out_of_order") else ""
    return {"text": say(WORDS["text"][lang], results=len(results), late=late,
                        workers=len(r.get("worker_pids") or [])),
            "why": WORDS["why"][lang], "bad": False}


SPEC = Experiment(
    id="executor_map", words=WORDS, section="map用法",
    code="""def work(n):
    print('%s is running' %os.getpid())
    time.sleep(random.randint(1,3))
    return  n**2

p=ProcessPoolExecutor() #不写默认是cpu的核数
obj=p.map(work,range(10))
p.shutdown()
print(list(obj)) #[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]""",
    params={
        "workers": Param(4, ge=1, le=16),
        "items": Param(10, ge=1, le=100),
        "max_delay": Param(3.0, ge=0, le=30),
    },
    marks=LOST_TASK_MARKS,
    key_moments=(
        KeyMoment({"kind": "map.submitted"}, {"kind": "map.result", "nth": -1},
                  "finished in the order {result.finish_order}; map() returned "
                  "{result.results}",
                  label_zh="完成的顺序是 {result.finish_order}；map() 返回 {result.results}"),
        # A worker killed mid-task (kill -9, the OOM killer): from its exit to the main's
        # word. By its exit code: the executor reaps the workers it ended (SIGTERM) in any
        # order, the dead one among them.
        KeyMoment({"kind": "proc.exit", "data": {"exitcode": -9}}, {"kind": "task.lost"},
                  "{end.label} lost: its worker (pid {end.pid}) died, and the executor "
                  "raised BrokenProcessPool",
                  label_zh="{end.label} 丢失：它的工作进程（pid {end.pid}）死了，执行器抛出 "
                           "BrokenProcessPool"),
    ),
    main=main,
    outcome=outcome,
    compare=({"workers": 1}, {"workers": 4}),
)
