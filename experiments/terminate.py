"""terminate() and is_alive(): the child is killed, its own child is not."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.measure import proc_stat
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

PAUSE = 0.5  # seconds the main lets the page show each step, before time_scale
GRANDCHILD_LIFE = 10.0  # a bound, so that a grandchild nobody stops still ends


def grandchild_work(seconds: float, conn: Connection) -> None:
    """Runs in the grandchild."""
    print("grandchild: pid %s, parent %s, working" % (os.getpid(), os.getppid()))
    conn.send(("grandchild", os.getpid(), os.getppid()))
    before = os.getppid()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
        if os.getppid() != before:
            print("grandchild: my parent %s is gone, I am still working (parent now %s)"
                  % (before, os.getppid()))
            conn.send(("orphaned", before, os.getppid()))
            before = os.getppid()
    print("grandchild: done")


def child_work(seconds: float, grandchild: bool, life: float, conn: Connection) -> None:
    """Runs in the child: it works until it is terminated (or `seconds` pass)."""
    print("child: pid %s, working" % os.getpid())
    if grandchild:
        Process(target=grandchild_work, args=(life, conn), name="grandchild-1").start()
    conn.send(("child", os.getpid(), os.getppid()))
    conn.close()
    time.sleep(seconds)
    print("child: done")  # never printed: terminate() comes first


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    scale = params.time_scale
    receiver, sender = Pipe(duplex=False)
    # The child would work as long as the grandchild lives: terminate() must find it
    # working, however slowly the machine boots processes.
    p1 = Process(target=child_work, name="child-1",
                 args=(GRANDCHILD_LIFE * scale, params.grandchild, GRANDCHILD_LIFE * scale,
                       sender))
    p1.start()
    sender.close()
    # Wait until the child (and the grandchild) are at work: under spawn each takes
    # ~0.1 s to boot, and terminate() must hit a child that is running.
    ready: dict[str, tuple[int, int]] = {}
    while len(ready) < (2 if params.grandchild else 1) and receiver.poll(30):
        try:
            who, pid, ppid = receiver.recv()
        except EOFError:
            break
        ready[who] = (pid, ppid)
    grandchild_pid, grandchild_parent = ready.get("grandchild", (None, None))
    time.sleep(PAUSE * scale)

    emit("proc.terminate", child=p1.pid, signal="SIGTERM")  # emitted first: the moment
    p1.terminate()  # SIGTERM to p1, and to p1 only
    alive_right_after = p1.is_alive()
    emit("proc.alive", child=p1.pid, alive=alive_right_after, after="terminate")
    print("p1.terminate(); p1.is_alive() -> %s" % alive_right_after)
    p1.join()
    alive_after_join = p1.is_alive()
    emit("proc.alive", child=p1.pid, alive=alive_after_join, after="join")
    print("p1.join();      p1.is_alive() -> %s (exit code %s)" % (alive_after_join,
                                                                   p1.exitcode))

    survived = False
    grandchild_state = None
    grandchild_ppid = None
    if grandchild_pid is not None:
        stat = proc_stat(grandchild_pid)
        survived = stat is not None and stat[0] not in ("Z", "X")
        if stat is not None:
            grandchild_state, grandchild_ppid = stat
        emit("proc.check", child=grandchild_pid, state=grandchild_state or "gone",
             ppid=grandchild_ppid, alive=survived)
        if survived and grandchild_ppid == grandchild_parent:
            # forkserver: the grandchild's parent was never p1 but a fork server.
            print("the grandchild %s is still alive (state %s); its parent is still pid %s, "
                  "the fork server that forked it" % (grandchild_pid, grandchild_state,
                                                      grandchild_ppid))
        elif survived:
            print("the grandchild %s is still alive (state %s), re-parented from %s to %s"
                  % (grandchild_pid, grandchild_state, grandchild_parent, grandchild_ppid))
        if survived:
            # Let the page show it living on without its parent (it says so itself when
            # it notices), then end it: the run ends only once all its processes exited.
            if grandchild_ppid != grandchild_parent and receiver.poll(5):
                # EOF: it died meanwhile, and stop_by_pid will find it gone.
                with contextlib.suppress(EOFError):
                    receiver.recv()
            time.sleep(2 * PAUSE * scale)
            stop_by_pid(grandchild_pid)
        else:
            print("the grandchild %s is gone" % grandchild_pid)
    receiver.close()
    return {
        "alive_right_after_terminate": alive_right_after,
        "alive_after_join": alive_after_join,
        "exitcode": p1.exitcode,
        "child_pid": p1.pid,
        "grandchild_survived": survived,
        "grandchild_pid": grandchild_pid,
        "grandchild_ppid_before": grandchild_parent,
        "grandchild_state": grandchild_state,
        "grandchild_ppid_after": grandchild_ppid,
    }


def stop_by_pid(pid: int) -> None:
    """Runs in the experiment's main process: SIGTERM a process that is not our child."""
    emit("proc.kill", child=pid, signal="SIGTERM")
    print("the main sends SIGTERM to the grandchild %s by pid" % pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    # Its new parent reaps it; we only wait until it is no longer running.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stat = proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)  # it ignored SIGTERM for 5 s


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: is_alive() right after terminate() and after join()."""
    if "alive_right_after_terminate" not in r:
        return None
    text = say(WORDS["text"][lang], right_after=r["alive_right_after_terminate"],
               after_join=r.get("alive_after_join"), code=number(r.get("exitcode")))
    if r.get("grandchild_pid") is None:
        pass  # no grandchild was started: nothing to say about one
    elif r.get("grandchild_survived") is not None:
        text += (say(WORDS["survived"][lang], ppid=number(r.get("grandchild_ppid_after")))
                 if r["grandchild_survived"] else WORDS["died"][lang])
    return {"text": text, "why": WORDS["why"][lang], "bad": False}


SPEC = Experiment(
    id="terminate", words=WORDS, section="开启进程的两种方式 · 其他使用方法",
    code="""p1=Process(target=work,args=('alex',))
p1.start()
p1.terminate() #不建议用 杀死p1 只会杀死p1 如果p1有子进程是不会杀死的
print(p1.is_alive()) #检测进程是否存活
p1.join()
print(p1.is_alive())""",
    params={
        "grandchild": Param(True),
    },
    key_moments=(
        KeyMoment({"kind": "proc.terminate"}, {"kind": "proc.exit", "proc": "child-1"},
                  "terminate() returns at once (is_alive() said "
                  "{result.alive_right_after_terminate}); child-1 died {ms} ms later",
                  label_zh="terminate() 立即返回（is_alive() 当时是 "
                           "{result.alive_right_after_terminate}）；child-1 在 {ms} "
                           "毫秒后才死"),
    ),
    main=main,
    outcome=outcome,
    compare=({"grandchild": True}, {"grandchild": False}),
)
