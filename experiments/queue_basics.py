"""The Queue's basics: Queue(3) fills up, put() past it blocks (then Full), get() on an
empty queue blocks (get_nowait: Empty), and what goes in first comes out first."""

from __future__ import annotations

import queue
import time
from multiprocessing import Queue
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.spec import Experiment, KeyMoment, Param, Track
from procscope.experiments.words import Lang, Outcome, json_list, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

# Seconds between the tutorial's steps (before time_scale): its lines run back to back, a
# few microseconds apart, all on one pixel of a picture of the whole lesson. A pause lets
# the page show each put and get on its own, the depth climbing and falling.
PAUSE = 0.2

NAMES = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
         "ninth", "tenth"]


def item_name(i: int) -> str:
    return NAMES[i] if i < len(NAMES) else "item%d" % (i + 1)


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process (the tutorial's queue lesson is one process)."""
    q: Any = Queue(params.maxsize)  # 指定队列的长度; 0 = no limit
    timeout = params.timeout * params.time_scale
    pending = [item_name(i) for i in range(params.items)]
    put_order: list[str] = []
    got: list[str] = []
    full_raised = False
    full_waited = None
    pause = PAUSE * params.time_scale

    def put(item: str) -> None:
        time.sleep(pause)
        q.put(item)
        put_order.append(item)
        emit("queue.put", item=item, depth=q.qsize(), maxsize=params.maxsize)
        print("q.put(%r)" % item)

    def get() -> None:
        time.sleep(pause)
        item = q.get()
        got.append(item)
        emit("queue.get", item=item, depth=q.qsize())
        print(item)

    while pending:
        while pending and not q.full():
            put(pending.pop(0))
        if pending and not full_raised:
            # 多放就会卡住: put() waits for room; with a timeout it gives up with queue.Full.
            emit("queue.full", depth=q.qsize(), maxsize=params.maxsize, waiting=timeout)
            print("q.full() -> True; q.put(%r, timeout=%s) waits..." % (pending[0], timeout))
            started = time.monotonic()
            emit("wait.start", call="q.put(%r, timeout=%s)" % (pending[0], timeout),
                 waits_for="room in the queue", waits_for_zh="队列里的空位")
            try:
                q.put(pending[0], timeout=timeout)
            except queue.Full:
                full_raised = True
                full_waited = round(time.monotonic() - started, 4)
                emit("wait.end", outcome="queue.Full")
                emit("queue.full", depth=q.qsize(), raised="queue.Full", waited=full_waited)
                print("queue.Full after %.2f s: nobody took anything out" % full_waited)
            else:  # pragma: no cover - only if someone else emptied the queue
                emit("wait.end", outcome="put", outcome_zh="放进去了")
                put_order.append(pending.pop(0))
        while len(got) < len(put_order):
            get()

    time.sleep(pause)
    try:
        q.get_nowait()  # 同 q.get(False)
        empty_raised = False
    except queue.Empty:
        empty_raised = True
        emit("queue.empty", depth=q.qsize(), raised="queue.Empty")
        print("q.get_nowait() on an empty queue: queue.Empty")
    q.close()
    q.join_thread()
    fifo = got == put_order
    print("got %s: %s" % (got, "first in, first out" if fifo else "not in put order!"))
    return {
        "got": got,
        "fifo": fifo,
        "full_raised": full_raised,
        "full_waited": full_waited,
        "empty_raised": empty_raised,
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: what get() returned, and which of Full and Empty were raised."""
    got = r.get("got")
    if not isinstance(got, list):
        return None
    return {"text": say(WORDS["text"][lang], got=json_list(got),
                        fifo=WORDS["fifo"][lang] if r.get("fifo") else "",
                        full=r.get("full_raised"), empty=r.get("empty_raised")),
            "why": WORDS["why"][lang], "bad": False}


SPEC = Experiment(
    id="queue_basics", words=WORDS, section="队列 · 队列的基础用法",
    code="""q=Queue(3)  #指定队列的长度为3

q.put('first')
q.put('second')
q.put('third')
q.put('fourth', timeout=1)  # 放满了：阻塞 1 秒后抛出 queue.Full

print(q.get())
print(q.get())
print(q.get())

q.put('fourth')
print(q.get())
q.get_nowait()  # 同 q.get(False)：队列空了，抛出 queue.Empty""",
    params={
        "maxsize": Param(3, ge=0, le=100),
        "items": Param(4, ge=1, le=100),
        "timeout": Param(1.0, ge=0, le=30),
    },
    key_moments=(
        KeyMoment({"kind": "queue.put", "nth": 1}, {"kind": "queue.put", "nth": 3},
                  "the depth climbs to {depth_max}",
                  label_zh="队列深度涨到 {depth_max}"),
        KeyMoment({"kind": "wait.start"}, {"kind": "wait.end"},
                  "put() on a full queue waits {s} s, then raises queue.Full",
                  label_zh="对满队列 put() 等了 {s} 秒，然后抛出 queue.Full"),
        KeyMoment({"kind": "queue.get", "nth": 1}, {"kind": "queue.empty"},
                  "get() in FIFO order: {result.got}; then get_nowait() raises queue.Empty",
                  label_zh="get() 按先进先出的顺序取出：{result.got}；然后 get_nowait() "
                           "抛出 queue.Empty"),
    ),
    main=main,
    outcome=outcome,
    tracks={"queue": Track()},
)
