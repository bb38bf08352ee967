"""The Queue's basics: Queue(3) fills up, put() past it blocks (then Full), get() on an
empty queue blocks (get_nowait: Empty), and what goes in first comes out first."""

from __future__ import annotations

import queue
import time
from multiprocessing import Queue
from typing import Any

from procscope.experiments.spec import Experiment, KeyMoment, Param, Track
from procscope.experiments.words import Lang, Outcome, json_list, say
from procscope.pipe.reporter import emit

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


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
TEXT: dict[Lang, str] = {
    "en": "Got {got}{fifo}; Full raised: {full}; Empty raised: {empty}.",
    "zh": "取出 {got}{fifo}；抛出 Full：{full}；抛出 Empty：{empty}。",
}
FIFO: dict[Lang, str] = {"en": " (first in, first out)", "zh": "（先进先出）"}
WHY: dict[Lang, str] = {
    "en": "A bounded Queue blocks (or raises after a timeout) when full, and get() does the "
          "same when empty.",
    "zh": "有容量上限的 Queue 满了就会阻塞（或超时后抛出异常），空的时候 get() 也一样。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: what get() returned, and which of Full and Empty were raised."""
    got = r.get("got")
    if not isinstance(got, list):
        return None
    return {"text": say(TEXT[lang], got=json_list(got), fifo=FIFO[lang] if r.get("fifo") else "",
                        full=r.get("full_raised"), empty=r.get("empty_raised")),
            "why": WHY[lang], "bad": False}


SPEC = Experiment(
    id="queue_basics",
    title="Queue: put, get, Full and Empty",
    summary="Queue(3) holds three items; one more put() waits, then raises queue.Full; "
            "get_nowait() on an empty queue raises queue.Empty; order is first in, first out.",
    section="队列 · 队列的基础用法",
    title_zh="队列：put、get、Full 和 Empty",
    summary_zh=(
        "Queue(3) 能放三个元素；再 put() 一个就会等待，然后抛出 queue.Full；对空队"
        "列 get_nowait() 会抛出 queue.Empty；顺序是先进先出。"
    ),
    lesson=(
        "A multiprocessing.Queue is a pipe plus locks that processes share, and it is "
        "first in, first out. Queue(3) can hold three items: the depth line climbs to 3. "
        "A fourth put() finds no room and waits for a get() that never comes here, so "
        "with a timeout it gives up and raises queue.Full (without one it would wait "
        "forever: 多放就会卡住). The items come out in the order they went in. Once the "
        "queue is empty, get() would wait forever too; get_nowait() (get(False)) raises "
        "queue.Empty at once instead. full(), empty() and qsize() are snapshots: another "
        "process may change the queue the moment after you asked. (Each step here waits "
        "0.2 s before it runs, so that the page shows every put and get apart; the "
        "tutorial's lines run back to back.)"
    ),
    lesson_zh=(
        "q=Queue(3) 指定队列的长度为3，规定了能放几个就能放几个，多放就会卡住。"
        "如果blocked为True（默认值），并且timeout为正值，该方法会阻塞timeout指定的时间，"
        "直到该队列有剩余的空间。如果超时，会抛出Queue.Full异常。"
        "如果blocked为False，有两种情况存在，如果Queue有一个值可用，则立即返回该值，"
        "否则，如果队列为空，则立即抛出Queue.Empty异常。"
    ),
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
        "maxsize": Param(3, "Queue(maxsize): how many items it holds (0 = no limit)",
                         ge=0, le=100,
                         description_zh="Queue(maxsize)：最多能放几个元素（0 = 不限）"),
        "items": Param(4, "How many items to put", ge=1, le=100,
                       description_zh="要 put 多少个元素"),
        "timeout": Param(1.0, "put(timeout=...) when the queue is full (seconds)",
                         ge=0, le=30,
                         description_zh="队列满时 put(timeout=...) 的超时（秒）"),
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
