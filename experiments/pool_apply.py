"""Pool.apply vs Pool.apply_async: serial calls vs `processes` at a time, on reused workers."""

from __future__ import annotations

import os
import time
from typing import Any

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


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
TEXT: dict[Lang, str] = {
    "en": "{mode}: {tasks:task} in {elapsed} on {workers:worker}, at most {at_once} at once "
          "(serial would be {serial}).",
    "zh": "{mode}：{tasks} 个任务在 {elapsed}内由 {workers} 个工作进程完成，最多同时 {at_once} 个"
          "（串行要 {serial}）。",
}
WHY_APPLY: dict[Lang, str] = {"en": "apply() blocks until each task is done: one at a time.",
                              "zh": "apply() 会阻塞到每个任务完成：一次一个。"}
WHY_APPLY_ASYNC: dict[Lang, str] = {
    "en": "apply_async() hands all tasks to the pool: they run side by side.",
    "zh": "apply_async() 把所有任务都交给进程池：它们并行运行。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: how many tasks ran at once, against the serial estimate."""
    if not is_number(r.get("elapsed")):
        return None
    return {"text": say(TEXT[lang], mode=r.get("mode"), tasks=len(r.get("results") or []),
                        elapsed=seconds(r["elapsed"], lang),
                        workers=len(r.get("worker_pids") or []),
                        at_once=number(r.get("max_concurrent")),
                        serial=seconds(r.get("serial_estimate"), lang)),
            "why": (WHY_APPLY if r.get("mode") == "apply" else WHY_APPLY_ASYNC)[lang],
            "bad": False}


SPEC = Experiment(
    id="pool_apply",
    title="Pool: apply waits, apply_async does not",
    summary="8 two-second tasks on a Pool of 4: apply takes 16 s, apply_async 4 s, "
            "and the same 4 pids do all the work.",
    section="进程池 · 同步调用 apply / 异步调用 apply_async",
    title_zh="进程池：apply 会等，apply_async 不会",
    summary_zh=(
        "在 4 个进程的进程池上跑 8 个两秒的任务：apply 要 16 秒，apply_async 只要"
        " 4 秒，所有工作都由同样的 4 个 pid 完成。"
    ),
    lesson=(
        "A Pool starts its worker processes once, up front, and then hands them tasks. "
        "With apply(), the main submits one task and blocks until its result comes back "
        "before submitting the next: only one worker is busy at any moment, so 8 tasks of "
        "2 s take 16 s, exactly as if there were no pool. With apply_async(), the main "
        "throws all 8 tasks into the pool at once and gets a promise back for each; 4 "
        "workers run 4 tasks at a time, so the 8 tasks take two rounds, about 4 s. "
        "Either way, look at the pids: only the pool's few processes ever run a task, "
        "each one picks up task after task. Starting a process is expensive, reusing "
        "one is cheap: that is the whole point of a pool. And if a worker dies in the "
        "middle of a task (kill -9 one), CPython's Pool starts a new worker but never "
        "returns that task: apply() and join() would wait for ever. Here the main "
        "watches the workers and ends the run at once, saying which task was lost "
        "(ProcessPoolExecutor raises BrokenProcessPool instead)."
    ),
    lesson_zh=(
        "进程池中从无到有的创建进程，以后就是这几个进程在执行任务。"
        "apply：同步提交任务，串行工作，拿到结果再往下走。"
        "apply_async：异步提交任务，直接将所有任务扔到进程池中不等待结果。"
        "观察打印结果，发现进程的pid在复用。"
    ),
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
        "mode": Param("apply_async", "apply (wait for each result) or apply_async",
                      choices=("apply", "apply_async"),
                      description_zh="apply（等每个结果）或 apply_async"),
        "processes": Param(4, "Worker processes in the pool", ge=1, le=16,
                           description_zh="进程池里的工作进程数"),
        "tasks": Param(8, "Tasks to submit", ge=1, le=64,
                       description_zh="要提交的任务数"),
        "task_seconds": Param(2.0, "How long each task sleeps (seconds)", ge=0, le=30,
                              description_zh="每个任务睡多久（秒）"),
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
