"""The ticket rush: 100 buyers, one ticket, a JSON file as the database, with or without a Lock."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from multiprocessing import Lock, Process
from typing import Any

from procscope.experiments.spec import Experiment, KeyMoment, Param, Prediction, Track
from procscope.experiments.words import Lang, Outcome, is_number, number, say
from procscope.pipe.reporter import emit

# search() and get() are the tutorial's own lines (the page shows them): its bare open()s
# stay, so that what a student reads is what runs (ruff's SIM115 is silenced for them).


def search(db: str) -> None:
    """Runs in each buyer: look at the stock, without the lock (as the tutorial does)."""
    dic = json.load(open(db))  # noqa: SIM115
    print("剩余票数%s" % dic["count"])


def get(db: str, receipts: str, read_delay: float, write_delay: float) -> None:
    """Runs in each buyer: read, think, decrement, think, write back."""
    dic = json.load(open(db))  # noqa: SIM115
    time.sleep(read_delay)  # 模拟读数据的网络延迟
    if dic["count"] > 0:
        dic["count"] -= 1
        time.sleep(write_delay)  # 模拟写数据的网络延迟
        json.dump(dic, open(db, "w"))  # noqa: SIM115
        print("购票成功")
        emit("ticket.sold", left=dic["count"])
        # One short O_APPEND write per sale: atomic, so the main can count the sales.
        fd = os.open(receipts, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"%d\n" % os.getpid())
        os.close(fd)


def task(lock: Any, db: str, receipts: str, read_delay: float, write_delay: float) -> None:
    """Runs in each buyer."""
    try:
        search(db)
        if lock is not None:
            emit("lock.wait")
            lock.acquire()
            emit("lock.acquire")
        try:
            get(db, receipts, read_delay, write_delay)
        finally:
            if lock is not None:
                # Reported just before, not after: once released, the next buyer may
                # report its acquire before this one could report the release.
                emit("lock.release")
                lock.release()
    except json.JSONDecodeError as e:
        # Without the lock a buyer can open db.txt between another's truncate and write:
        # it reads a half-written (often empty) file. The tutorial's code dies here too.
        emit("file.torn", error=str(e))
        raise


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    workdir = tempfile.mkdtemp(prefix="procscope-tickets-")
    try:
        db = os.path.join(workdir, "db.txt")
        receipts = os.path.join(workdir, "receipts.txt")
        with open(db, "w") as f:
            json.dump({"count": params.tickets}, f)
        open(receipts, "w").close()
        lock = Lock() if params.lock else None
        read_delay = params.read_delay * params.time_scale
        write_delay = params.write_delay * params.time_scale
        buyers = []
        start_time = time.time()
        for i in range(params.n):  # 模拟并发 n 个客户端抢票
            p = Process(target=task, args=(lock, db, receipts, read_delay, write_delay),
                        name=f"buyer-{i + 1}")
            p.start()
            buyers.append(p)
        for p in buyers:
            p.join()
        used_time = time.time() - start_time
        with open(receipts) as f:
            sold = len(f.read().split())
        try:
            with open(db) as f:
                remaining: int | None = json.load(f)["count"]
        except ValueError:
            remaining = None
        torn = sum(1 for p in buyers if p.exitcode != 0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    oversold = max(0, sold - params.tickets)
    if oversold:
        print("卖出 %d 张票，库存只有 %d 张：超卖 %d 张" % (sold, params.tickets, oversold))
    else:
        print("卖出 %d 张票，库存 %d 张" % (sold, params.tickets))
    return {
        "tickets": params.tickets,
        "sold": sold,
        "remaining": remaining,
        "oversold": oversold,
        "torn_reads": torn,
        "lock": params.lock,
        "buyers": [p.pid for p in buyers],
        "elapsed": round(used_time, 4),
    }


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
SOLD: dict[Lang, str] = {"en": "Sold {sold:ticket}, stock was {tickets} — ",
                         "zh": "卖出 {sold} 张票，库存 {tickets} 张——"}
OVERSOLD: dict[Lang, str] = {"en": "{over} oversold", "zh": "超卖 {over} 张"}
NONE_OVERSOLD: dict[Lang, str] = {"en": "none oversold", "zh": "没有超卖"}
TORN: dict[Lang, str] = {"en": "; {torn:buyer} read a half-written file",
                         "zh": "；{torn} 个买家读到了写了一半的文件"}
# The tutorial's search() looks at the stock before taking the Lock: looking is not
# protected, buying is. A torn look is then no failure of the Lock.
TORN_OUTSIDE_LOCK: dict[Lang, str] = {"en": " in search(), which runs outside the Lock",
                                      "zh": "（在 search() 里，它在锁之外运行）"}
FULL_STOP: dict[Lang, str] = {"en": ".", "zh": "。"}
WHY_LOCK: dict[Lang, str] = {
    "en": "With the Lock, buyers took turns: each one read the stock only after the previous "
          "one had written it.",
    "zh": "加了锁，买家轮流买票：每个人都在前一个人写回库存之后才去读。",
}
WHY_NO_LOCK: dict[Lang, str] = {
    "en": "Without the Lock, buyers read the stock at the same time, before anyone wrote it "
          "back.",
    "zh": "没有锁，买家们同时读到了库存，那时还没有人把它写回去。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: the sales against the stock, and what the Lock changed."""
    if not is_number(r.get("sold")):
        return None
    over = r.get("oversold")
    if over is None:
        over = max(0, r["sold"] - r["tickets"])
    text = say(SOLD[lang], sold=r["sold"], tickets=number(r.get("tickets")))
    text += say(OVERSOLD[lang], over=over) if over else NONE_OVERSOLD[lang]
    torn = r.get("torn_reads")
    if torn:
        text += say(TORN[lang], torn=torn)
        if r.get("lock"):
            text += TORN_OUTSIDE_LOCK[lang]
    text += FULL_STOP[lang]
    bad = (is_number(over) and over > 0) or (
        is_number(torn) and torn > 0 and not r.get("lock"))
    return {"text": text, "why": (WHY_LOCK if r.get("lock") else WHY_NO_LOCK)[lang],
            "bad": bad}


SPEC = Experiment(
    id="ticket_rush",
    title="The ticket rush: a Lock makes it correct",
    summary="100 buyers race for 1 ticket stored in a JSON file; without a Lock, many get it.",
    section="进程同步锁 · 模拟买票的过程",
    title_zh="抢票：加锁才能保证正确",
    summary_zh="100 个买家抢 JSON 文件里仅有的 1 张票；不加锁，很多人都会“抢到”。",
    lesson=(
        "Every buyer first looks at the stock (no lock), then buys: read the file, wait "
        "0.1 s, decrement, wait 0.2 s, write it back. With the Lock, buying is one buyer "
        "at a time: watch the lock lane pass from buyer to buyer, and exactly one ticket "
        "is sold. Without it, dozens of buyers read count=1 before the first one writes "
        "0, so all of them 'succeed': the ticket is oversold. Some buyers even open the "
        "file while another is rewriting it and read half a file (JSONDecodeError)."
    ),
    lesson_zh=(
        "加锁可以保证多个进程修改同一块数据时，同一时间只能有一个任务可以进行修改，即串行的修改，"
        "没错，速度是慢了，但牺牲了速度却保证了数据安全。"
    ),
    code="""def get():
    dic=json.load(open('db.txt'))
    time.sleep(0.1) #模拟读数据的网络延迟
    if dic['count'] >0:
        dic['count']-=1
        time.sleep(0.2) #模拟写数据的网络延迟
        json.dump(dic,open('db.txt','w'))
        print('购票成功')

def task(lock):
    search()
    lock.acquire()
    get()
    lock.release()""",
    params={
        "n": Param(100, "Number of buyers (processes)", ge=1, le=500,
                   description_zh="买家（进程）个数"),
        "tickets": Param(1, "Tickets in stock", ge=0, le=1000,
                         description_zh="库存票数"),
        "lock": Param(True, "Whether buyers take the Lock around get()",
                      description_zh="买家是否在 get() 前后加锁"),
        "read_delay": Param(0.1, "Network delay after reading (seconds)", ge=0, le=5,
                            description_zh="读数据后的网络延迟（秒）"),
        "write_delay": Param(0.2, "Network delay before writing (seconds)", ge=0, le=5,
                             description_zh="写数据前的网络延迟（秒）"),
    },
    key_moments=(
        KeyMoment({"kind": "lock.acquire", "nth": 1}, {"kind": "lock.release", "nth": 4},
                  "one buyer at a time: the lock passes from buyer to buyer",
                  label_zh="一次只有一个买家：锁从一个买家传给下一个"),
        KeyMoment({"kind": "ticket.sold", "nth": 1}, {"kind": "ticket.sold", "nth": -1},
                  "{result.sold} sold of {result.tickets}",
                  label_zh="库存 {result.tickets} 张，卖出 {result.sold} 张"),
    ),
    main=main,
    outcome=outcome,
    tracks={"lock": Track(),
            "sold": Track(always=True, stock_param="tickets", counts="ticket.sold")},
    marks={"ticket.sold": "star", "file.torn": "cross"},
    prediction=Prediction("Without the Lock, every buyer at once: how many tickets will be "
                          "sold?", "sold", question_zh="不加锁，所有人同时抢票：会卖出几张票？",
                          le=500, unit="tickets", params={"lock": False}),
    compare=({"lock": True}, {"lock": False}),
)
