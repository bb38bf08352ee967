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

from procscope.experiments.measure import proc_stat
from procscope.experiments.spec import Experiment, KeyMoment, Param, Track
from procscope.experiments.words import Lang, Outcome, is_number, say
from procscope.pipe.reporter import emit


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


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
TEXT: dict[Lang, str] = {"en": "{mode}: produced {produced}, consumed {consumed}{hung}.",
                         "zh": "{mode}：生产了 {produced} 个，消费了 {consumed} 个{hung}。"}
HUNG: dict[Lang, str] = {"en": " — the consumer hung waiting for more",
                         "zh": "——消费者一直卡着等更多"}
WHY_HUNG: dict[Lang, str] = {"en": "Nothing told the consumer that production was over.",
                             "zh": "没有任何东西告诉消费者生产已经结束。"}
WHY_ENDED: dict[Lang, str] = {
    "en": "The consumer knew when to stop (a sentinel, or JoinableQueue.join()).",
    "zh": "消费者知道什么时候该停（结束信号，或 JoinableQueue.join()）。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: produced against consumed, and whether the consumer hung."""
    if not is_number(r.get("produced")):
        return None
    hung = bool(r.get("hung"))
    return {"text": say(TEXT[lang], mode=r.get("mode"), produced=r["produced"],
                        consumed=r.get("consumed"), hung=HUNG[lang] if hung else ""),
            "why": (WHY_HUNG if hung else WHY_ENDED)[lang], "bad": hung}


SPEC = Experiment(
    id="producer_consumer",
    title="Producers and consumers: a queue in between",
    summary="The naive consumer waits in q.get() forever; a None sentinel or a "
            "JoinableQueue lets everything end.",
    section="生产者和消费者-队列应用",
    title_zh="生产者和消费者：中间隔着一个队列",
    summary_zh=(
        "朴素的消费者会永远卡在 q.get() 里；用 None 作结束信号，或用 JoinableQueu"
        "e，所有进程才能结束。"
    ),
    lesson=(
        "Producers put baozi into a queue, consumers take them out: neither waits for "
        "the other, the queue absorbs the difference (watch its depth rise while the "
        "consumers are slower). naive: the tutorial's first version never ends. The "
        "producer finishes, the consumer eats everything, then calls q.get() again and "
        "waits for a baozi that will never come; the main, which waits for its children "
        "before it exits, waits for ever. Here the main gives up after hang_timeout and "
        "terminates the consumer. sentinel: after the last item the producer side puts "
        "one None per consumer; a consumer that gets None stops, and the run ends by "
        "itself. joinable: a JoinableQueue counts what is not yet done: each consumer "
        "calls task_done() per item, the producer's q.join() returns when everything "
        "was consumed, the main joins the producers, and the consumers are daemons that "
        "die with the main's code. (The tutorial sleeps 2 s to make a baozi and 2 s to "
        "eat one, so its queue never holds more than one; here making takes 0.5 s and "
        "eating 1.5 s by default, so the queue visibly fills and drains. A consumer "
        "blocked in q.get() is drawn hatched: waiting for the next baozi.)"
    ),
    lesson_zh=(
        "此时的问题是主进程永远不会结束，原因是：生产者p在生产完后就结束了，"
        "但是消费者c在取空了q之后，则一直处于死循环中且卡在q.get()这一步。"
        "解决方式无非是让生产者在生产完毕后，往队列中再发一个结束信号，"
        "这样消费者在接收到结束信号后就可以break出死循环。"
        "q.join() 记录消费者消费次数，等着消费者都消费完；"
        "q.task_done() 消费者消费一条，就告诉生产者。"
    ),
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
        "mode": Param("joinable", "naive (hangs), sentinel (None ends it) or joinable "
                      "(JoinableQueue + daemon consumers)",
                      choices=("naive", "sentinel", "joinable"),
                      description_zh=("naive（会卡住）、sentinel（用 None 结束）或 "
                          "joinable（JoinableQueue + 守护进程消费者）")),
        "producers": Param(1, "Number of producers", ge=1, le=8,
                           description_zh="生产者个数"),
        "consumers": Param(1, "Number of consumers", ge=1, le=8,
                           description_zh="消费者个数"),
        "items": Param(5, "Items each producer makes", ge=1, le=50,
                       description_zh="每个生产者生产的数量"),
        "produce_delay": Param(0.5, "Seconds to make one item", ge=0, le=10,
                               description_zh="做出一个要几秒"),
        "consume_delay": Param(1.5, "Seconds to eat one item", ge=0, le=10,
                               description_zh="吃掉一个要几秒"),
        "hang_timeout": Param(3.0, "naive: how long the main waits for the stuck consumers "
                              "before it gives up (seconds)", ge=0, le=60,
                              description_zh="naive 模式：主进程等卡住的消费者多久后放弃（秒）"),
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
