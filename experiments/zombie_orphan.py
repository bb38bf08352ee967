"""Zombie and orphan processes, as the kernel shows them in /proc.

zombie: a child that has exited but that its parent has not waited for stays in the
process table in state Z until the parent reaps it (join).
orphan: a child whose parent exits first is re-parented to the nearest child subreaper
(the procscope server) or to init, and goes on running.
"""

from __future__ import annotations

import multiprocessing.process
import os
import time
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.measure import command_of, proc_stat
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

# --- zombie ---------------------------------------------------------------------------


def short_task(name: str) -> None:
    """Runs in the child: a little work, then exit."""
    print("%s: pid %s, parent %s, working" % (name, os.getpid(), os.getppid()))
    print("%s: done, exiting" % name)


def zombie(hold: float) -> dict[str, Any]:
    """Runs in the experiment's main process: leave a finished child unreaped for `hold` s."""
    p = Process(target=short_task, args=("child",), name="child-1")
    p.start()
    assert p.pid is not None
    # Nothing here may call join(), is_alive(), active_children() or start another
    # process: each of them reaps finished children (waitpid), which would end the zombie.
    seen: list[str] = []
    parent = None
    z_since: float | None = None
    # The child exits at once; the zombie is then held for `hold` s from the moment it
    # is first seen as one. A child that never turns Z here (forkserver) ends the wait
    # when it is gone, or after `hold` plus time to boot.
    deadline = time.monotonic() + hold + 10
    while True:
        stat = proc_stat(p.pid)
        state = stat[0] if stat else "gone"
        if not seen or seen[-1] != state:
            seen.append(state)
            if stat:
                parent = stat[1]
            if state == "Z":
                z_since = time.monotonic()
                deadline = z_since + hold
                emit("proc.zombie", child=p.pid, state=state, ppid=parent,
                     path="/proc/%d/stat" % p.pid)
                print("/proc/%d/stat says Z: the child has exited, but nobody has "
                      "waited for it: a zombie" % p.pid)
            else:
                emit("proc.check", child=p.pid, state=state, ppid=parent)
        if time.monotonic() >= deadline or state == "gone":
            break
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
    zombie_seen = "Z" in seen
    # How long the child stayed a zombie before someone (this main's join below, or the
    # fork server at once) collected it.
    zombie_seconds = 0.0 if z_since is None else time.monotonic() - z_since
    if zombie_seen:
        print("still a zombie after %.2f s; the main now reaps it with join()" % hold)
    elif parent is not None and parent != os.getpid():
        print("never a zombie here: the child's parent is pid %s (%s), not the main, and "
              "that parent reaped it at once" % (parent, command_of(parent)))
    p.join()  # waitpid(): the zombie's exit status is collected and it disappears
    after = proc_stat(p.pid)
    state_after = after[0] if after else "gone"
    emit("proc.check", child=p.pid, state=state_after, after="join")
    print("after join(): /proc/%d is %s" % (p.pid, state_after))
    return {
        "mode": "zombie",
        "zombie_seen": zombie_seen,
        "zombie_seconds": round(zombie_seconds, 4),
        "states_seen": seen,
        "child_pid": p.pid,
        "child_parent": parent,
        "child_exitcode": p.exitcode,
        "state_after_join": state_after,
    }


# --- orphan ---------------------------------------------------------------------------


def orphan_task(ready: Connection, report: Connection, hold: float) -> None:
    """Runs in the orphan: watch its own ppid change when its parent exits."""
    before = os.getppid()
    print("orphan: pid %s, my parent is %s" % (os.getpid(), before))
    emit("proc.parent", ppid=before, when="before")
    ready.send(before)  # the parent may exit now
    ready.close()
    after = before
    deadline = time.monotonic() + hold
    while after == before and time.monotonic() < deadline:
        time.sleep(0.005)
        after = os.getppid()
    if after != before:
        who = command_of(after)
        emit("proc.reparented", old_ppid=before, new_ppid=after, new_parent=who)
        print("orphan: my parent %s is gone; my parent is now %s (%s)" % (before, after, who))
    else:
        print("orphan: my parent is still %s after %.2f s" % (before, hold))
    # An orphan is not killed: it goes on with its work under its new parent, and ends on
    # its own, `hold` seconds after it started.
    time.sleep(max(0.0, deadline - time.monotonic()))
    print("orphan: done, exiting")
    report.send({"pid": os.getpid(), "ppid_before": before, "ppid_after": after,
                 "new_parent": command_of(after) if after != before else None})
    report.close()


def parent_task(report: Connection, hold: float) -> None:
    """Runs in the orphan's parent: start the child, and exit without waiting for it."""
    ready_r, ready_w = Pipe(duplex=False)
    child = Process(target=orphan_task, args=(ready_w, report, hold), name="orphan-1")
    child.start()
    ready_w.close()
    if ready_r.poll(30):
        ready_r.recv()
    print("parent: pid %s, exiting without waiting for my child %s" % (os.getpid(),
                                                                      child.pid))
    # multiprocessing joins a process's non-daemonic children when its code ends (that is
    # what keeps the tutorial's main waiting). An orphan needs a parent that does not wait,
    # like a C parent that just returns from main(): this parent forgets its child.
    multiprocessing.process._children.discard(child)  # type: ignore[attr-defined]


def orphan(hold: float) -> dict[str, Any]:
    """Runs in the experiment's main process: a parent that exits before its child."""
    receiver, sender = Pipe(duplex=False)
    parent = Process(target=parent_task, args=(sender, hold), name="parent-1")
    parent.start()
    sender.close()
    parent.join()
    seen = receiver.recv() if receiver.poll(hold + 30) else {}
    receiver.close()
    before, after = seen.get("ppid_before"), seen.get("ppid_after")
    reparented = after if after is not None and after != before else None
    if reparented is None and before is not None and before != parent.pid:
        print("the orphan's parent was pid %s (%s), not parent-1: parent-1's exit orphaned "
              "nothing" % (before, command_of(before)))
    return {
        "mode": "orphan",
        "orphan_reparented_to": reparented,
        "orphan_pid": seen.get("pid"),
        "parent_pid": parent.pid,
        "ppid_before": before,
        "ppid_after": after,
        "new_parent": seen.get("new_parent"),
        "main_pid": os.getpid(),
    }


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    hold = params.hold * params.time_scale
    if params.mode == "zombie":
        return zombie(hold)
    return orphan(hold)


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: the zombie until its reaping, or the orphan's new parent."""
    if r.get("mode") == "zombie":
        return {"text": say(WORDS["zombie"][lang], pid=number(r.get("child_pid")))
                if r.get("zombie_seen") else WORDS["no_zombie"][lang],
                "why": WORDS["why_zombie"][lang], "bad": False}
    if r.get("mode") == "orphan":
        return {"text": say(WORDS["orphan"][lang], pid=number(r.get("orphan_pid")),
                            before=number(r.get("ppid_before")),
                            after=number(r.get("ppid_after"))),
                "why": WORDS["why_orphan"][lang], "bad": False}
    return None


SPEC = Experiment(
    id="zombie_orphan", words=WORDS, section="僵尸进程和孤儿进程",
    code="""p = Process(target=work)
p.start()
time.sleep(3)   # 子进程早已结束，没人 join：/proc/<pid>/stat 里是 Z（僵尸）
p.join()        # 回收：僵尸消失

def parent():
    Process(target=child).start()
    # 父进程不等子进程就退出：子进程成了孤儿，被收养
def child():
    print(os.getppid())   # 父进程的 pid
    time.sleep(1)
    print(os.getppid())   # 收养它的进程的 pid""",
    params={
        "mode": Param("zombie", choices=("zombie", "orphan")),
        "hold": Param(3.0, ge=0, le=30),
    },
    key_moments=(
        KeyMoment({"kind": "proc.zombie"}, {"kind": "proc.reap"},
                  "the child exited, but stays a zombie for {s} s, until join() reaps it",
                  label_zh="子进程已退出，却作为僵尸进程留了 {s} 秒，直到 join() 回收它"),
        KeyMoment({"kind": "proc.parent"}, {"kind": "proc.reparented"},
                  "its parent gone, the orphan is re-parented to {end.new_parent}",
                  label_zh="父进程没了，孤儿进程被 {end.new_parent} 收养"),
    ),
    main=main,
    outcome=outcome,
    compare=({"mode": "zombie"}, {"mode": "orphan"}),
)
