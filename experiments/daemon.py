"""Daemon processes: cut off when the main's code ends, and not allowed to have children."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml


def grandchild() -> None:
    """Runs in the daemon's child, if it could ever be started (it cannot)."""
    print("grandchild is running")


def work1(name: str, seconds: float, spawn_grandchild: bool, conn: Connection) -> None:
    """Runs in the daemon."""
    print("%s开始工作" % name)
    error = None
    if spawn_grandchild:
        try:
            Process(target=grandchild, name="grandchild-1").start()
        except AssertionError as e:
            # Process.start() checks that the process calling it is not a daemon.
            error = "%s: %s" % (type(e).__name__, e)
            emit("error", type=type(e).__name__, message=str(e),
                 traceback=traceback.format_exc())
            print(error)
    conn.send({"started": True, "grandchild_error": error})
    time.sleep(seconds)
    print("%s工作完毕" % name)
    conn.send({"done": True})


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    receiver, sender = Pipe(duplex=False)
    p1 = Process(target=work1, name="daemon-1",
                 args=("alex", params.work * params.time_scale, params.spawn_grandchild,
                       sender))
    p1.daemon = True  # 设置为守护进程; must be set before start()
    p1.start()
    sender.close()
    print("主")
    # The tutorial's main ends right here, and the daemon usually has not even started
    # (under spawn it takes ~0.1 s to boot). So that every start method shows the same
    # thing, the main waits until the daemon has begun its work (and tried to start its
    # child) before its code ends.
    first: dict[str, Any] = {}
    if receiver.poll(30):
        with contextlib.suppress(EOFError):  # the daemon died before it said anything
            first = receiver.recv()
    grandchild_error = first.get("grandchild_error")
    # The rest of the main's code (the tutorial's has none): while it runs, the daemon works.
    time.sleep(params.main_work * params.time_scale)

    # The main's code ends here. What happens next is what multiprocessing's exit
    # handler (multiprocessing.util._exit_function) does when a process's code ends:
    # terminate every daemonic child still alive, then join it. We do exactly that, one
    # step earlier and in the open, so the run can still report what became of the daemon.
    emit("main.code_end", daemons=[p.pid for p in multiprocessing.active_children()
                                   if p.daemon])
    for p in multiprocessing.active_children():
        if p.daemon:
            p.terminate()
    p1.join()

    finished = False
    while receiver.poll():
        try:
            finished = finished or bool(receiver.recv().get("done"))
        except EOFError:
            break
    receiver.close()
    if finished:
        print("the daemon finished its work before the main's code ended")
    else:
        print("the daemon was terminated (exit code %s): '%s工作完毕' never printed"
              % (p1.exitcode, "alex"))
    return {
        "daemon_finished": finished,
        "daemon_exitcode": p1.exitcode,
        "daemon_pid": p1.pid,
        "grandchild_error": grandchild_error,
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: how the daemon ended, and whether its child could start."""
    if "daemon_finished" not in r:
        return None
    text = (WORDS["finished"][lang] if r["daemon_finished"] else
            say(WORDS["terminated"][lang], code=number(r.get("daemon_exitcode"))))
    if r.get("grandchild_error"):
        text += say(WORDS["no_child"][lang], error=r["grandchild_error"])
    return {"text": text, "why": WORDS["why"][lang], "bad": False}


SPEC = Experiment(
    id="daemon", words=WORDS, section="守护进程",
    code="""def work1(name):
    print('%s开始工作'%name)
    time.sleep(2)
    print('%s工作完毕'%name)

p1=Process(target=work1,args=('alex',))
p1.daemon=True  #设置为守护进程
p1.start()
print('主')""",
    params={
        "work": Param(2.0, ge=0, le=60),
        "main_work": Param(0.5, ge=0, le=60),
        "spawn_grandchild": Param(False),
    },
    key_moments=(
        KeyMoment({"kind": "print", "proc": "daemon-1", "nth": 1},
                  {"kind": "proc.exit", "proc": "daemon-1"},
                  "the daemon worked {ms} ms: the main's code ended, SIGTERM cut it off",
                  label_zh="守护进程工作了 {ms} 毫秒：主进程的代码一结束，SIGTERM "
                           "就把它终止了"),
    ),
    main=main,
    outcome=outcome,
    compare=({"spawn_grandchild": False}, {"spawn_grandchild": True}),
)
