"""Producers and consumers over a queue: the naive version hangs, a sentinel or a
JoinableQueue ends it.

    producer-1 ─┐                      ┌─► consumer-1
    producer-2 ─┼─► q (Queue / JoinableQueue) ─┼─► consumer-2
       ...     ─┘   depth = q.qsize()  └─►  ...

Each producer and consumer counts what it did in its own slot of a shared array (no lock:
a consumer may be terminated at any moment, and must not die holding one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from multiprocessing import JoinableQueue, Process, Queue, RawArray, Value
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.measure import proc_stat
from procscope.experiments.spec import Experiment, KeyMoment, Param, Track
from procscope.experiments.words import Lang, Outcome, is_number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml


def producer(q: Any, n: int, mode: str, items: int, delay: float, producers: int,
             produced: Any, finished: Any, consumers: int) -> None:
    """Runs in each producer."""
    for i in range(items):
        time.sleep(delay)
        res = "包子%s-%s" % (n, i) if producers > 1 else "包子%s" % i
        q.put(res)
        produced[n - 1] += 1
        emit("queue.put", item=res, depth=q.qsize())
        print("%s生产%s" % (os.getpid(), res))
    if mode == "sentinel":
        # One end-of-data signal per consumer, put by the last producer to finish: a
        # consumer that got None stops taking, so an early None would strand items.
        with finished.get_lock():  # producers are never killed: a lock is safe here
            finished.value += 1
            last = finished.value == producers
        if last:
            for _ in range(consumers):
                q.put(None)
                emit("queue.put", item=None, depth=q.qsize(), sentinel=True)
            print("%s: 生产完毕，放入 %d 个结束信号 None" % (os.getpid(), consumers))
    elif mode == "joinable":
        emit("join.wait", what="q.join()", name="the queue", name_zh="队列")
        q.join()  # 等着消费者都消费完: until task_done() was called for every item
        emit("join.done", what="q.join()", name="the queue")


def consumer(q: Any, n: int, mode: str, delay: float, consumed: Any) -> None:
    """Runs in each consumer."""
    while True:
        emit("wait.start", call="q.get()", waits_for="the next baozi", waits_for_zh="下一个包子")
        res = q.get()  # blocks while the queue is empty
        emit("wait.end")
        emit("queue.get", item=res, depth=q.qsize())
        if res is None:
            print("%s收到结束信号" % os.getpid())
            break
        time.sleep(delay)
        print("%s吃%s" % (os.getpid(), res))
        consumed[n - 1] += 1
        if mode == "joinable":
            q.task_done()  # 消费者消费一条 就告诉生产者


def proc_state(pid: int | None) -> str:
    """The kernel's state letter for `pid` (S = sleeping, e.g. blocked in get())."""
    stat = None if pid is None else proc_stat(pid)
    return "gone" if stat is None else stat[0]


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    scale = params.time_scale
    mode = params.mode
    produce_delay = params.produce_delay * scale
    consume_delay = params.consume_delay * scale
    hang_timeout = params.hang_timeout * scale
    total = params.producers * params.items
    # Generous: all of the work done one item at a time, plus the hang timeout.
    bound = (params.items * produce_delay + total * consume_delay / params.consumers
             + hang_timeout + 10)

    q: Any = JoinableQueue() if mode == "joinable" else Queue()
    produced = RawArray("i", params.producers)
    consumed = RawArray("i", params.consumers)
    finished = Value("i", 0)
    producers = [
        Process(target=producer, name="producer-%d" % n,
                args=(q, n, mode, params.items, produce_delay, params.producers,
                      produced, finished, params.consumers))
        for n in range(1, params.producers + 1)
    ]
    consumers = [
        Process(target=consumer, name="consumer-%d" % n,
                args=(q, n, mode, consume_delay, consumed))
        for n in range(1, params.consumers + 1)
    ]
    if mode == "joinable":
        for c in consumers:
            c.daemon = True  # 主进程结束了，肯定也消费完了，所以也随之结束吧
    for p in producers:
        p.start()
    for c in consumers:
        c.start()

    hung = False
    if mode == "naive":
        print("主")
        # The tutorial's main ends here, but a process's exit waits (joins) for its
        # non-daemonic children: the consumers, who loop on q.get() forever.
        for p in producers:
            p.join()
        wait_until(lambda: sum(consumed) >= sum(produced), bound)
        for c in consumers:
            emit("join.wait", child=c.pid, name=c.name)
        deadline = time.monotonic() + hang_timeout
        for c in consumers:
            c.join(max(0.0, deadline - time.monotonic()))
        hung = any(c.is_alive() for c in consumers)
    elif mode == "sentinel":
        for p in producers:
            p.join()
        for c in consumers:
            emit("join.wait", child=c.pid, name=c.name)
            c.join(bound)
            if c.exitcode is not None:
                emit("join.done", child=c.pid, name=c.name, exitcode=c.exitcode)
        hung = any(c.is_alive() for c in consumers)
        print("主")
    else:
        for p in producers:
            emit("join.wait", child=p.pid, name=p.name)
            p.join(bound)  # 主进程在等p1结束，p1在等消费者结束
            if p.exitcode is not None:
                emit("join.done", child=p.pid, name=p.name, exitcode=p.exitcode)
        hung = any(p.is_alive() for p in producers)
        print("主")

    if hung:
        stuck = [c for c in consumers + producers if c.is_alive()]
        states = {c.name: proc_state(c.pid) for c in stuck}
        emit("hang", waiting_for=[c.name for c in stuck], states=states,
             waited=round(hang_timeout if mode == "naive" else bound, 3),
             produced=sum(produced), consumed=sum(consumed))
        print("主进程永远不会结束：生产者早已结束，队列已空，消费者却卡在 q.get() 等下一个包子")
        print("the main would wait forever: %s still blocked (state %s) %.2f s after the "
              "last item; the main terminates them now"
              % (", ".join(states), "/".join(sorted(set(states.values()))), hang_timeout))
        for c in stuck:
            c.terminate()
        for c in stuck:
            c.join()
    return {
        "mode": mode,
        "produced": sum(produced),
        "consumed": sum(consumed),
        "hung": hung,
        "consumed_by": {c.name: consumed[i] for i, c in enumerate(consumers)},
        "exitcodes": {p.name: p.exitcode for p in producers + consumers},
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: produced against consumed, and whether the consumer hung."""
    if not is_number(r.get("produced")):
        return None
    hung = bool(r.get("hung"))
    return {"text": say(WORDS["text"][lang], mode=r.get("mode"), produced=r["produced"],
                        consumed=r.get("consumed"), hung=WORDS["hung"][lang] if hung else ""),
            "why": (WORDS["why_hung"] if hung else WORDS["why_ended"])[lang], "bad": hung}


SPEC = Experiment(
    id="producer_consumer", words=WORDS, section="生产者和消费者-队列应用",
    code="""def producer(q):
    for i in range(5):
        time.sleep(2)
        res='包子%s' %i
        q.put(res)
        print('%s生产%s' %(os.getpid(),res))
    q.join() #记录消费者消费次数 等着消费者都消费完

def consumer(q):
    while True:
        res=q.get()
        time.sleep(2)
        print('%s吃%s' %(os.getpid(),res))
        q.task_done() #消费者消费一条  就告诉生产者

q=JoinableQueue()
p1=Process(target=producer,args=(q,))
c1=Process(target=consumer,args=(q,))
c1.daemon=True #主进程结束了，肯定也消费完了，所以也随之结束吧
p1.start()
c1.start()
p1.join() #主进程在等p1结束，p1在等消费者结束
print('主')""",
    params={
        "mode": Param("joinable", choices=("naive", "sentinel", "joinable")),
        "producers": Param(1, ge=1, le=8),
        "consumers": Param(1, ge=1, le=8),
        "items": Param(5, ge=1, le=50),
        "produce_delay": Param(0.5, ge=0, le=10),
        "consume_delay": Param(1.5, ge=0, le=10),
        "hang_timeout": Param(3.0, ge=0, le=60),
    },
    key_moments=(
        KeyMoment({"kind": "queue.put", "nth": 1}, {"kind": "queue.get", "nth": -1},
                  "the producer is faster: the queue fills up to {depth_max}, then drains",
                  label_zh="生产者更快：队列先涨到 {depth_max}，然后被取空"),
        KeyMoment({"kind": "wait.start", "proc": "consumer-*", "nth": -1}, {"kind": "hang"},
                  "naive: the consumer waits {s} s in q.get() for a baozi that never comes; "
                  "the main gives up",
                  label_zh="朴素版：消费者在 q.get() 里等了 {s} 秒，等一个永远不会来的包子；"
                           "主进程放弃了"),
    ),
    main=main,
    outcome=outcome,
    tracks={"queue": Track()},
    compare=({"mode": "naive"}, {"mode": "joinable"}),
)
