"""ProcessPoolExecutor.map: the tasks finish in any order, the results come back in input order."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

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


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
TEXT: dict[Lang, str] = {
    "en": "map() returned {results:result} in input order{late}, on {workers:worker}.",
    "zh": "map() 按输入顺序返回了 {results} 个结果{late}，用了 {workers} 个工作进程。",
}
LATE: dict[Lang, str] = {"en": ", although the tasks finished out of order",
                         "zh": "，尽管任务完成的顺序是乱的"}
WHY: dict[Lang, str] = {
    "en": "Executor.map yields results in the order of its inputs, whatever order they "
          "finish in.",
    "zh": "无论任务以什么顺序完成，Executor.map 都按输入的顺序给出结果。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: results in input order, whatever order the tasks finished in."""
    results = r.get("results")
    if not isinstance(results, list):
        return None
    late = LATE[lang] if r.get("out_of_order") else ""
    return {"text": say(TEXT[lang], results=len(results), late=late,
                        workers=len(r.get("worker_pids") or [])),
            "why": WHY[lang], "bad": False}


SPEC = Experiment(
    id="executor_map",
    title="Executor.map keeps the input order",
    summary="10 items on 4 worker processes, each sleeping 1-3 s: they finish in any "
            "order, yet map returns [0, 1, 4, ..., 81].",
    section="map用法",
    title_zh="Executor.map 保持输入的顺序",
    summary_zh=(
        "10 个元素交给 4 个工作进程，每个睡 1-3 秒：完成的顺序随意，map 返回的却是"
        " [0, 1, 4, ..., 81]。"
    ),
    lesson=(
        "concurrent.futures.ProcessPoolExecutor is the newer face of the process pool: "
        "map(work, range(10)) submits one task per item to the worker processes and "
        "gives back an iterator of the results. The items take different times, so the "
        "task.end events come in a scrambled order: a quick item 3 is done long before a "
        "slow item 1. Yet the results come out in input order, [0, 1, 4, 9, ...]: map "
        "hands over item 1's result only when item 1 is done, holding back the ones that "
        "finished early. Watch the map.result events in the main: they wait for the slow "
        "item, then several follow at once. If you need results as they finish instead, "
        "use submit() and as_completed(). If a worker dies in the middle of an item (kill "
        "-9 one), the executor breaks: map() raises BrokenProcessPool, every pending item "
        "fails and the other workers are ended; the run says which item was lost."
    ),
    lesson_zh=(
        "p=ProcessPoolExecutor() 不写默认是cpu的核数。"
        "obj=p.map(work,range(10)); p.shutdown(); print(list(obj)) "
        "这三行代码等同于上边注释的代码意思（逐个 submit，shutdown，再逐个 result()）。"
    ),
    code="""def work(n):
    print('%s is running' %os.getpid())
    time.sleep(random.randint(1,3))
    return  n**2

p=ProcessPoolExecutor() #不写默认是cpu的核数
obj=p.map(work,range(10))
p.shutdown()
print(list(obj)) #[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]""",
    params={
        "workers": Param(4, "Worker processes of the executor", ge=1, le=16,
                         description_zh="执行器的工作进程数"),
        "items": Param(10, "Items to map over", ge=1, le=100,
                       description_zh="要 map 的元素个数"),
        "max_delay": Param(3.0, "The longest sleep of an item (seconds); the others sleep "
                                "a third or two thirds of it", ge=0, le=30,
                           description_zh=("一个元素最长睡多久（秒）；"
                               "其他的睡它的三分之一或三分之二")),
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
