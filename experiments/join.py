"""join, and the tutorial's 2/3/5 s deep dive: the total is the longest task, not the sum."""

from __future__ import annotations

import time
from multiprocessing import Process
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.spec import Experiment, KeyMoment, Param, Prediction
from procscope.experiments.words import Lang, Outcome, is_number, say, seconds
from procscope.pipe.reporter import Reporter

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

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


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: the total against the longest task and the sum."""
    if not is_number(r.get("elapsed")):
        return None
    if r.get("joined") is False:
        return {"text": say(WORDS["not_joined"][lang], elapsed=seconds(r["elapsed"], lang),
                            longest=seconds(r.get("max"), lang)),
                "why": WORDS["why_not_joined"][lang], "bad": False}
    return {"text": say(WORDS["joined"][lang], elapsed=seconds(r["elapsed"], lang),
                        longest=seconds(r.get("max"), lang), total=seconds(r.get("sum"), lang)),
            "why": WORDS["why_joined"][lang], "bad": False}


SPEC = Experiment(
    id="join", words=WORDS, section="Process的join方法",
    code="""p1=Process(target=work1,args=('alex',))
p2 = Process(target=work2, args=('egon',))
p3 = Process(target=work3, args=('qiji',))
start_time = time.time()
p1.start(); p2.start(); p3.start()
p1.join(); p2.join(); p3.join()
print('总用时间为%s' % (time.time() - start_time))
print('主')""",
    params={
        "durations": Param([2.0, 3.0, 5.0], ge=0, le=60, min_items=1, max_items=10),
        "join": Param(True),
    },
    key_moments=(
        KeyMoment({"kind": "join.wait", "nth": 1}, {"kind": "join.done", "nth": -1},
                  "the main waits {s} s in join(): the longest worker, not the sum",
                  label_zh="主进程在 join() 里等了 {s} 秒：等的是最慢的子进程，"
                           "而不是所有时间之和"),
    ),
    main=main,
    outcome=outcome,
    prediction=Prediction("elapsed", le=60, unit="s"),
    compare=({"join": True}, {"join": False}),
)
