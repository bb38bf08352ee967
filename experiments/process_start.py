"""Two ways to start a process, and why '主' is printed before the child's first line."""

from __future__ import annotations

import os
import time
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.measure import command_of
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml


def _tell_main(conn: Connection, printed_at: int) -> None:
    """Runs in the child: send the main what only the child can know about itself."""
    conn.send({"pid": os.getpid(), "ppid": os.getppid(), "printed_at": printed_at})
    conn.close()


def work(name: str, seconds: float, conn: Connection) -> None:
    """Runs in the child (way one: a function as the target)."""
    printed_at = time.monotonic_ns()
    print("%s is running" % name)
    _tell_main(conn, printed_at)
    print("%s: pid %s, ppid %s" % (name, os.getpid(), os.getppid()))
    time.sleep(seconds)
    print("%s is done " % name)


class MyProcess(Process):
    """Way two: a subclass of Process whose run() is the child's work."""

    def __init__(self, name: str, seconds: float, conn: Connection) -> None:
        # Created in the main; the object is copied (fork) or pickled (spawn, forkserver)
        # into the child, so everything run() needs must be an attribute.
        super().__init__()
        # The tutorial writes self.name = name. Process.name is also the lane's label on
        # the page (its prefix is the role), so the tutorial's name goes after the role.
        self.name = "worker-%s" % name
        self.person = name
        self.seconds = seconds
        self.conn = conn

    def run(self) -> None:
        """Runs in the child: start() makes the child call run()."""
        printed_at = time.monotonic_ns()
        print("%s is running" % self.person)
        _tell_main(self.conn, printed_at)
        print("%s: pid %s, ppid %s" % (self.person, os.getpid(), os.getppid()))
        time.sleep(self.seconds)
        print("%s is done " % self.person)


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    seconds = 2 * params.time_scale  # the tutorial's time.sleep(2)
    receiver, sender = Pipe(duplex=False)
    p1: Process
    if params.style == "function":
        p1 = Process(target=work, args=("alex", seconds, sender), name="worker-alex")
    else:
        p1 = MyProcess("alex", seconds, sender)
    p1.start()  # 运行进程 开始执行任务: only asks the OS for a new process, and returns
    print("主")
    # Stamped once print() has returned, and the child stamps before its print(): if
    # main_printed_at is the earlier, '主' was out before the child's line began.
    main_printed_at = time.monotonic_ns()
    sender.close()  # the child holds its own copy now
    print("p1.pid = %s, os.getpid() = %s, os.getppid() = %s" % (p1.pid, os.getpid(),
                                                                  os.getppid()))
    child = receiver.recv() if receiver.poll(30) else None
    receiver.close()
    p1.join()
    if child is None:  # the child died before it could say anything
        raise RuntimeError("the child never reported (exit code %s)" % p1.exitcode)
    first = main_printed_at < child["printed_at"]
    lead_ms = (child["printed_at"] - main_printed_at) / 1e6
    emit("print.order", main_first=first, child_after_ms=round(lead_ms, 3))
    # The picture's label says the order as it was (a loaded machine can run the child
    # first): never "'主' first" when it was not.
    # order_zh: the same, for the Chinese interface's label.
    if first:
        order = "'主' first, the child's first line %.1f ms later" % lead_ms
        order_zh = "先打印 '主'，子进程的第一行晚了 %.1f 毫秒" % lead_ms
        print("'主' came %.1f ms before the child's first line" % lead_ms)
    else:
        order = "this time the child's first line came %.1f ms before '主'" % -lead_ms
        order_zh = "这一次子进程的第一行比 '主' 早了 %.1f 毫秒" % -lead_ms
        print("this time the child printed %.1f ms before '主'" % -lead_ms)
    if child["ppid"] != os.getpid():
        # forkserver: the main asks the fork server for a child, and the server forks it.
        print("the child's parent is pid %s (%s), not the main" % (child["ppid"],
                                                                  command_of(child["ppid"])))
    return {
        "style": params.style,
        "main_printed_first": first,
        "child_printed_after_ms": round(lead_ms, 3),
        "order": order,
        "order_zh": order_zh,
        "main_pid": os.getpid(),
        "main_ppid": os.getppid(),
        "child_pid": child["pid"],
        "child_ppid": child["ppid"],
        "child_parent_is_main": child["ppid"] == os.getpid(),
        "child_exitcode": p1.exitcode,
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: who printed first, the main or its child."""
    if "main_printed_first" not in r:
        return None
    if r["main_printed_first"]:
        text = say(WORDS["main_first"][lang], pid=number(r.get("child_pid")),
                   parent=number(r.get("child_ppid")),
                   ms=number(r.get("child_printed_after_ms")))
    else:
        text = say(WORDS["child_first"][lang], pid=number(r.get("child_pid")))
    return {"text": text, "why": WORDS["why"][lang], "bad": False}


SPEC = Experiment(
    id="process_start", words=WORDS, section="开启进程的两种方式",
    code="""def work(name):
    print('%s is running' %name)
    time.sleep(2)
    print('%s is done ' %name)

p1=Process(target=work,args=('alex',))
p1.start() #运行进程 开始执行任务
print('主')

class MyProcess(Process):
    def __init__(self,name):
        super().__init__()
        self.name=name
    def run(self):
        print('%s is running' % self.name)
        time.sleep(2)
        print('%s is done ' % self.name)

p1=MyProcess('alex')
p1.start() #调动run函数执行
print('主')""",
    params={
        "style": Param("function", choices=("function", "subclass")),
    },
    key_moments=(
        KeyMoment({"kind": "print", "proc": "main", "text": "主"},
                  {"kind": "print", "proc": "!main"},
                  "{result.order}", label_zh="{result.order_zh}"),
    ),
    main=main,
    outcome=outcome,
    compare=({"style": "function"}, {"style": "subclass"}),
)
