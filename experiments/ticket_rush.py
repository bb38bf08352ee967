"""The ticket rush: 100 buyers, one ticket, a JSON file as the database, with or without a Lock."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from multiprocessing import Lock, Process
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.spec import Experiment, KeyMoment, Param, Prediction, Track
from procscope.experiments.words import Lang, Outcome, is_number, number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

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


# The tutorial's search() looks at the stock before taking the Lock: looking is not
# protected, buying is. A torn look is then no failure of the Lock.


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: the sales against the stock, and what the Lock changed."""
    if not is_number(r.get("sold")):
        return None
    over = r.get("oversold")
    if over is None:
        over = max(0, r["sold"] - r["tickets"])
    text = say(WORDS["sold"][lang], sold=r["sold"], tickets=number(r.get("tickets")))
    text += say(WORDS["oversold"][lang], over=over) if over else WORDS["none_oversold"][lang]
    torn = r.get("torn_reads")
    if torn:
        text += say(WORDS["torn"][lang], torn=torn)
        if r.get("lock"):
            text += WORDS["torn_outside_lock"][lang]
    text += WORDS["full_stop"][lang]
    bad = (is_number(over) and over > 0) or (
        is_number(torn) and torn > 0 and not r.get("lock"))
    return {"text": text, "why": WORDS["why_lock" if r.get("lock") else "why_no_lock"][lang],
            "bad": bad}


SPEC = Experiment(
    id="ticket_rush", words=WORDS, section="进程同步锁 · 模拟买票的过程",
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
        "n": Param(100, ge=1, le=500),
        "tickets": Param(1, ge=0, le=1000),
        "lock": Param(True),
        "read_delay": Param(0.1, ge=0, le=5),
        "write_delay": Param(0.2, ge=0, le=5),
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
    prediction=Prediction("sold", le=500, unit="tickets", params={"lock": False}),
    compare=({"lock": True}, {"lock": False}),
)
