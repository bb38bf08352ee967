"""Pool.apply vs Pool.apply_async: serial calls vs `processes` at a time, on reused workers."""

from __future__ import annotations

import os
import time
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.measure import max_overlap
from procscope.experiments.pool_watch import (
    LOST_TASK_MARKS,
    WATCH_THREAD,
    LostTaskWatch,
    lost_task_moment,
    task_done,
    task_started,
    watched_pool,
)
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, is_number, number, say, seconds
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml


def work(index: int, name: str, seconds: float) -> tuple[str, int, int, int]:
    """Runs in each pool worker: one task. Returns ('ok', pid, start_ns, end_ns)."""
    start = time.monotonic_ns()
    task_started(index)  # so that the main can tell if this worker dies mid-task
    emit("task.start", task=index)
    print("%s%s开始工作了" % (os.getpid(), name))
    time.sleep(seconds)
    print("%s%s工作完毕" % (os.getpid(), name))
    end = time.monotonic_ns()
    emit("task.end", task=index)
    task_done(index)
    return "ok", os.getpid(), start, end


def run_tasks(p: Any, params: Any, seconds: float,
              returned: list[tuple[str, int, int, int]]) -> None:
    """Runs in the experiment's main process: the tutorial's loop, apply or apply_async."""
    if params.mode == "apply":
        for i in range(params.tasks):
            emit("task.submit", task=i, mode="apply")
            emit("wait.start", call="p.apply()", waits_for="task %d's result" % i,
                 waits_for_zh="任务 %d 的结果" % i)
            # 同步提交任务 串行工作 拿到结果再往下走
            res = p.apply(work, args=(i, "alex", seconds))
            emit("wait.end")
            emit("task.result", task=i, pid=res[1])
            print(res[0])
            returned.append(res)
    else:
        res_l = []
        for i in range(params.tasks):
            emit("task.submit", task=i, mode="apply_async")
            res_l.append(p.apply_async(work, args=(i, "alex", seconds)))  # 异步提交任务
        p.close()
        emit("join.wait", what="pool", name="the pool", name_zh="进程池")
        p.join()  # 等待所有任务都执行完毕
        emit("join.done", what="pool", name="the pool")
        for i, r in enumerate(res_l):
            res = r.get()
            emit("task.result", task=i, pid=res[1])
            print(res[0])
            returned.append(res)


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    seconds = params.task_seconds * params.time_scale
    # A worker killed mid-task would make apply() / join() wait for ever (pool_watch.py):
    # the watch ends the run instead, saying which task was lost. The tutorial's Pool(4),
    # with an initializer that hands each worker the watch's shared arrays.
    watch = LostTaskWatch(params.tasks)
    returned: list[tuple[str, int, int, int]] = []
    # 进程池中从无到有的创建 processes 个进程，以后就是这几个进程在执行任务
    with watched_pool(watch, params.processes) as p:
        start_time = time.time()
        run_tasks(p, params, seconds, returned)
    used_time = time.time() - start_time
    task_pids = [r[1] for r in returned]
    worker_pids = sorted(set(task_pids))
    print("总用时间为%.3f, 用到的进程 pid: %s" % (used_time, worker_pids))
    waves = -(-params.tasks // params.processes)  # ceil
    return {
        "mode": params.mode,
        "results": [r[0] for r in returned],
        "worker_pids": worker_pids,
        "task_pids": task_pids,
        "elapsed": round(used_time, 4),
        "serial_estimate": round(params.tasks * seconds, 4),
        "parallel_estimate": round(waves * seconds, 4),
        "max_concurrent": max_overlap([(r[2], r[3]) for r in returned]),
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: how many tasks ran at once, against the serial estimate."""
    if not is_number(r.get("elapsed")):
        return None
    return {"text": say(WORDS["text"][lang], mode=r.get("mode"),
                        tasks=len(r.get("results") or []),
                        elapsed=seconds(r["elapsed"], lang),
                        workers=len(r.get("worker_pids") or []),
                        at_once=number(r.get("max_concurrent")),
                        serial=seconds(r.get("serial_estimate"), lang)),
            "why": WORDS["why_apply" if r.get("mode") == "apply"
                            else "why_apply_async"][lang],
            "bad": False}


SPEC = Experiment(
    id="pool_apply", words=WORDS, section="进程池 · 同步调用 apply / 异步调用 apply_async",
    code="""def work(name):
    print('%s%s开始工作了' %(os.getpid(),name))
    time.sleep(2)
    print('%s%s工作完毕' %(os.getpid(),name))
    return 'ok'

p=Pool(4)
for i in range(8):
    res=p.apply(work,args=('alex',))        # 同步: 串行
    # res=p.apply_async(work,args=('alex',)) # 异步: 4 个一起
p.close()
p.join()""",
    params={
        "mode": Param("apply_async", choices=("apply", "apply_async")),
        "processes": Param(4, ge=1, le=16),
        "tasks": Param(8, ge=1, le=64),
        "task_seconds": Param(2.0, ge=0, le=30),
    },
    marks=LOST_TASK_MARKS,
    helper_threads=(WATCH_THREAD,),
    key_moments=(
        KeyMoment({"kind": "task.submit", "nth": 1}, {"kind": "task.result", "nth": -1},
                  "{result.mode}: {result.max_concurrent} at once, all in {s} s (serial: "
                  "{result.serial_estimate} s), on the pids {result.worker_pids}",
                  label_zh="{result.mode}：同时 {result.max_concurrent} 个，共用 {s} "
                           "秒（串行要 {result.serial_estimate} 秒），进程 pid 为 "
                           "{result.worker_pids}"),
        # From the dead worker's exit (as its reaping by the Pool's handler thread saw it)
        # to the watch's word.
        lost_task_moment("task {end.task}", "任务 {end.task}"),
    ),
    main=main,
    outcome=outcome,
    compare=({"mode": "apply"}, {"mode": "apply_async"}),
)
