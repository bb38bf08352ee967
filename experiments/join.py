"""join, and the tutorial's 2/3/5 s deep dive: the total is the longest task, not the sum."""

from __future__ import annotations

import time
from multiprocessing import Process
from typing import Any

from procscope.experiments.spec import Experiment, KeyMoment, Param, Prediction
from procscope.experiments.words import Lang, Outcome, is_number, say, seconds
from procscope.pipe.reporter import Reporter

NAMES = ["alex", "egon", "qiji", "yuan", "wupeiqi", "alvin", "lily", "jack", "rain", "xiaoma"]


def work(name: str, seconds: float) -> None:
    """Runs in each worker."""
    print("%s开始工作" % name)
    time.sleep(seconds)
    print("%s工作完毕" % name)


def main(params: Any, report: Reporter) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    scaled = [d * params.time_scale for d in params.durations]
    processes = [
        Process(target=work, args=(NAMES[i % len(NAMES)], seconds), name=f"worker-{i + 1}")
        for i, seconds in enumerate(scaled)
    ]
    start_time = time.time()
    for p in processes:
        p.start()
    if params.join:
        for p in processes:
            report.emit("join.wait", child=p.pid, name=p.name)
            p.join()
            report.emit("join.done", child=p.pid, name=p.name, exitcode=p.exitcode)
    used_time = time.time() - start_time
    print("总用时间为%s" % used_time)
    print("主")
    return {
        "elapsed": round(used_time, 4),
        "sum": round(sum(scaled), 4),
        "max": round(max(scaled), 4),
        "joined": params.join,
    }


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
NOT_JOINED: dict[Lang, str] = {
    "en": "The main printed its total after {elapsed}: it did not wait for the workers "
          "(longest {longest}).",
    "zh": "主进程在 {elapsed}后就打印了总数：它没有等子进程（最长的要 {longest}）。",
}
WHY_NOT_JOINED: dict[Lang, str] = {
    "en": "Without join() the main runs on while its children still work.",
    "zh": "没有 join()，主进程会在子进程还在工作时继续往下运行。",
}
JOINED: dict[Lang, str] = {
    "en": "All workers done in {elapsed}: about the longest task ({longest}), not the sum "
          "({total}).",
    "zh": "所有子进程在 {elapsed}内完成：大约是最长任务的时间（{longest}），"
          "而不是总和（{total}）。",
}
WHY_JOINED: dict[Lang, str] = {
    "en": "The workers ran at the same time; join() only waited for the slowest.",
    "zh": "子进程同时运行；join() 只等了最慢的那个。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: the total against the longest task and the sum."""
    if not is_number(r.get("elapsed")):
        return None
    if r.get("joined") is False:
        return {"text": say(NOT_JOINED[lang], elapsed=seconds(r["elapsed"], lang),
                            longest=seconds(r.get("max"), lang)),
                "why": WHY_NOT_JOINED[lang], "bad": False}
    return {"text": say(JOINED[lang], elapsed=seconds(r["elapsed"], lang),
                        longest=seconds(r.get("max"), lang), total=seconds(r.get("sum"), lang)),
            "why": WHY_JOINED[lang], "bad": False}


SPEC = Experiment(
    id="join",
    title="join: wait for the children",
    summary="Three workers sleep 2, 3 and 5 s; joining all takes about 5 s, not 10.",
    section="Process的join方法",
    title_zh="join：等待子进程",
    summary_zh="三个子进程分别睡 2、3、5 秒；全部 join 完大约只要 5 秒，而不是 10 秒。",
    lesson=(
        "The main process starts all the workers, then waits for each with join(). The "
        "workers run at the same time, so by the time the main is waiting for the 5 s "
        "worker the others are long done: the total is the longest task, not the sum. "
        "Watch the main's lane: it sits in join while the workers' lanes overlap. With "
        "join off, the main prints its total at once and the workers finish after it."
    ),
    lesson_zh=(
        "主进程等待子进程运行完毕后，再运行，是主进程在等子进程。"
        "发现最后的所用的时间基本是用时最长的任务，并不是所有任务的时间和。"
    ),
    code="""p1=Process(target=work1,args=('alex',))
p2 = Process(target=work2, args=('egon',))
p3 = Process(target=work3, args=('qiji',))
start_time = time.time()
p1.start(); p2.start(); p3.start()
p1.join(); p2.join(); p3.join()
print('总用时间为%s' % (time.time() - start_time))
print('主')""",
    params={
        "durations": Param([2.0, 3.0, 5.0], "How long each worker sleeps (seconds)",
                           ge=0, le=60, min_items=1, max_items=10,
                           description_zh="每个子进程睡多久（秒）"),
        "join": Param(True, "Whether the main joins its workers",
                      description_zh="主进程是否 join 它的子进程"),
    },
    key_moments=(
        KeyMoment({"kind": "join.wait", "nth": 1}, {"kind": "join.done", "nth": -1},
                  "the main waits {s} s in join(): the longest worker, not the sum",
                  label_zh="主进程在 join() 里等了 {s} 秒：等的是最慢的子进程，"
                           "而不是所有时间之和"),
    ),
    main=main,
    outcome=outcome,
    prediction=Prediction("How long will the main wait in join() for all its workers, in "
                          "seconds?", "elapsed",
                          question_zh="主进程在 join() 里一共要等多久（秒）？",
                          le=60, unit="s"),
    compare=({"join": True}, {"join": False}),
)
