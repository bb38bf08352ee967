"""Daemon processes: cut off when the main's code ends, and not allowed to have children."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from typing import Any

from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, number, say
from procscope.pipe.reporter import emit


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


# The outcome's phrases in each language of the page (`lang`), filled by words.say().
FINISHED: dict[Lang, str] = {"en": "The daemon finished its work.",
                             "zh": "守护进程完成了它的工作。"}
TERMINATED: dict[Lang, str] = {
    "en": "The daemon was terminated when the main's code ended (exit code {code}).",
    "zh": "主进程的代码一结束，守护进程就被终止了（退出码 {code}）。",
}
NO_CHILD: dict[Lang, str] = {"en": " Its child could not start: {error}.",
                             "zh": "它的子进程无法启动：{error}。"}
WHY: dict[Lang, str] = {
    "en": "A daemonic process dies with its parent's code, and may not have children.",
    "zh": "守护进程随父进程的代码结束而终止，而且不能有子进程。",
}


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: how the daemon ended, and whether its child could start."""
    if "daemon_finished" not in r:
        return None
    text = (FINISHED[lang] if r["daemon_finished"] else
            say(TERMINATED[lang], code=number(r.get("daemon_exitcode"))))
    if r.get("grandchild_error"):
        text += say(NO_CHILD[lang], error=r["grandchild_error"])
    return {"text": text, "why": WHY[lang], "bad": False}


SPEC = Experiment(
    id="daemon",
    title="Daemon processes die with the main's code",
    summary="A daemon child is terminated as soon as the main's code ends, and cannot "
            "start children of its own.",
    section="守护进程",
    title_zh="守护进程随主进程的代码结束而终止",
    summary_zh=(
        "主进程的代码一运行完，守护进程就被终止；守护进程也不能再开启自己的子进程"
        "。"
    ),
    lesson=(
        "A daemon is a helper that lives only as long as the main's code runs. The main "
        "sets p.daemon = True before start(), prints '主', and its code ends: at that "
        "moment multiprocessing terminates every daemonic child that is still running, "
        "whatever it was doing. Watch the daemon's lane: it starts its work, and is cut "
        "off (exit code -15, SIGTERM) long before its '工作完毕' line. Note that it is "
        "the end of the main's code that counts, not the end of the main process: the "
        "main is still alive to reap it. A daemon may not have children either: its "
        "Process.start() fails with AssertionError: daemonic processes are not allowed "
        "to have children (turn on spawn_grandchild). (The tutorial's main ends right "
        "after '主', before the daemon has done anything; here the main's code goes on "
        "for main_work = 0.5 s, so that the daemon is seen working, and cut off at 0.5 s "
        "of its 2 s of work.)"
    ),
    lesson_zh=(
        "主进程创建守护进程，其一：守护进程会在主进程代码执行结束后就终止；"
        "其二：守护进程内无法再开启子进程，否则抛出异常：AssertionError: daemonic "
        "processes are not allowed to have children。"
        "注意：进程之间是互相独立的，主进程代码运行结束，守护进程随即终止。"
    ),
    code="""def work1(name):
    print('%s开始工作'%name)
    time.sleep(2)
    print('%s工作完毕'%name)

p1=Process(target=work1,args=('alex',))
p1.daemon=True  #设置为守护进程
p1.start()
print('主')""",
    params={
        "work": Param(2.0, "How long the daemon works (seconds)", ge=0, le=60,
                      description_zh="守护进程工作多久（秒）"),
        "main_work": Param(0.5, "How long the main's own code runs after print('主') "
                           "(seconds): the daemon works meanwhile", ge=0, le=60,
                           description_zh=("主进程在 print('主') 之后自己的代码还运行多久（秒）"
                               "：这期间守护进程在工作")),
        "spawn_grandchild": Param(False, "Whether the daemon tries to start a child",
                                  description_zh="守护进程是否尝试开启子进程"),
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
