"""A Pool's lost tasks: a worker killed (kill -9, the OOM killer, a crash) in the middle of
a task.

CPython's `multiprocessing.Pool` replaces a dead worker but never returns the task it was
running: `apply()`, `AsyncResult.get()` and `p.join()` wait for it for ever (where
`concurrent.futures.ProcessPoolExecutor` raises `BrokenProcessPool`). So that such a run
ends within moments of the death, saying which task was lost and why, the main watches:

    each pool worker                     the main process
    ─────────────────                    ─────────────────────────────────────────────
    task_started(i): started[i] = pid    watch thread, every 50 ms: a task started and
    ... the task ...                     not done whose worker is gone (or a zombie)?
    task_done(i):    done[i] = 1           -> emit task.lost, SIGUSR1 to the main thread
                                         main thread: blocked in apply() / join(); the
                                           signal wakes it and its handler raises TaskLost

The arrays reach the workers through the Pool's initializer (shared memory is inherited,
never pickled per task), with a semaphore each worker releases once armed:
`wait_for_workers` lets a lesson wait until its pool is up (socket_server's clients come
only then, as in the tutorial). `watched_pool` is that wiring for a lesson's main (a Pool
armed by the watch, a lost task turned into the run's error), `lost_task_moment` the key
moment every such lesson declares. Standard library only (see spec.py).

A `ProcessPoolExecutor` needs no watch thread: it notices the death itself, fails every
pending future with BrokenProcessPool and ends its other workers (SIGTERM). What it does not
say is which task was lost, or which worker died: `lost_in_broken_pool` reads that from the
same arrays (handed over by the executor's initializer) and the workers' exit codes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing import Pool, RawArray, Semaphore
from multiprocessing.pool import Pool as PoolType
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from procscope.experiments.measure import proc_stat
from procscope.experiments.spec import KeyMoment, LessonFailure
from procscope.experiments.words import Lang
from procscope.pipe.reporter import emit

_slots: tuple[Any, Any] | None = None  # in each worker: (started, done)

WATCH_THREAD = "lost-task-watch"
"""The watch thread's name: a lesson that starts the watch names it in its spec's
`helper_threads` (wiring: the page folds it into the main's lane)."""
LOST_TASK_MARKS = {"task.lost": "cross"}
"""How the page draws task.lost (its spec's `marks`), in every lesson that may lose a task."""


class TaskLost(Exception):
    """A task whose worker died: the Pool will never return it. Said in English and, for
    the page's Chinese interface, in Chinese (`message_zh`)."""

    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message_zh = message_zh


def arm_worker(started: Any, done: Any, ready: Any) -> None:
    """Runs in each pool worker, once, as the Pool's initializer: then it takes tasks."""
    global _slots
    _slots = (started, done)
    ready.release()


def task_started(index: int) -> None:
    """Runs in a pool worker, as task `index` begins."""
    if _slots is not None:
        _slots[0][index] = os.getpid()


def task_done(index: int) -> None:
    """Runs in a pool worker, as task `index` returns."""
    if _slots is not None:
        _slots[1][index] = 1


class LostTaskWatch:
    """Runs in the experiment's main process: while entered, a thread watches the tasks'
    workers, and the main thread gets TaskLost (from any blocking call) when one dies."""

    def __init__(self, tasks: int, names: Sequence[str] | None = None,
                 names_zh: Sequence[str] | None = None) -> None:
        # How the run's words name task i ("task 3", "page www.python.org", "conn 5"), and
        # the same in Chinese (the task.lost label the Chinese page writes).
        self.names = list(names) if names is not None else ["task %d" % i for i in range(tasks)]
        self.names_zh = list(names_zh) if names_zh is not None else \
            ["任务 %d" % i for i in range(tasks)]
        self.started = RawArray("i", tasks)
        self.done = RawArray("b", tasks)
        self.ready = Semaphore(0)  # one release per worker armed (a replacement too)
        self.lost: tuple[str, str] | None = None  # (English, Chinese)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._main = threading.main_thread().ident
        self._previous: Any = None

    @property
    def initargs(self) -> tuple[Any, Any, Any]:
        return (self.started, self.done, self.ready)

    def wait_for_workers(self, count: int, timeout: float) -> bool:
        """Until `count` workers have been armed (each then waits for a task), or timeout."""
        deadline = time.monotonic() + timeout
        for _ in range(count):
            if not self.ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
        return True

    def __enter__(self) -> LostTaskWatch:
        self._previous = signal.signal(signal.SIGUSR1, self._raise)
        self._thread = threading.Thread(target=self._watch, name=WATCH_THREAD)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # the sentinel, then join (STYLE.md 4)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        signal.signal(signal.SIGUSR1, self._previous)

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        raise TaskLost(*(self.lost or ("a task was lost", "一个任务丢失了")))

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for i, pid in enumerate(self.started):
                if not pid or self.done[i]:
                    continue
                stat = proc_stat(pid)
                if stat is not None and stat[0] not in ("Z", "X"):
                    continue
                self.lost = ("%s was lost: its pool worker (pid %d) died in the middle of "
                             "it; CPython's Pool never returns such a task, so the main "
                             "would wait for it for ever" % (self.names[i], pid),
                             "%s 丢失了：执行它的进程池工作进程（pid %d）在中途死掉了；"
                             "CPython 的 Pool 永远不会返回这样的任务，主进程会一直等下去"
                             % (self.names_zh[i], pid))
                emit("task.lost", task=i, pid=pid, label=self.names[i],
                     label_zh=self.names_zh[i],
                     why="its worker died; Pool never returns a task whose worker died")
                assert self._main is not None
                signal.pthread_kill(self._main, signal.SIGUSR1)
                return


@contextmanager
def watched_pool(watch: LostTaskWatch, processes: int) -> Iterator[PoolType]:
    """Runs in the experiment's main process: a Pool of `processes` whose workers `watch`
    follows while the block runs. A task lost ends the run: its words printed, then raised
    as the run's LessonFailure (the lost task is the lesson's point, not a bug). Leaving,
    the pool is closed (the workers finish and exit) or, after an error, terminated; then
    joined.
    """
    pool = Pool(processes, initializer=arm_worker, initargs=watch.initargs)
    try:
        with watch:
            yield pool
        pool.close()
    except TaskLost as lost:
        print(lost)
        pool.terminate()
        raise LessonFailure(str(lost), lost.message_zh) from None
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def lost_task_moment(task: str = "{end.label}", task_zh: str = "{end.label}") -> KeyMoment:
    """The key moment of a lost task, from its worker's exit (the first pool worker to exit
    in a run that lost a task is that worker: the others end after, with the pool) to the
    watch's task.lost. `task` names it in the label ("{end.label}": as the watch's names
    do), `task_zh` in the Chinese one."""
    return KeyMoment({"kind": "proc.exit", "role": "pool", "nth": 1}, {"kind": "task.lost"},
                     "%s lost: its worker (pid {end.pid}) died, and Pool never returns it"
                     % task,
                     label_zh="%s 丢失：它的工作进程（pid {end.pid}）死了，进程池永远不会返回它"
                              % task_zh)


def lost_in_broken_pool(watch: LostTaskWatch, workers: Sequence[BaseProcess]
                        ) -> tuple[str, str]:
    """Runs in the experiment's main process, once a ProcessPoolExecutor raised
    BrokenProcessPool and was shut down (so its workers are joined and have exit codes).

    The worker that died is the one the executor did not end itself: its exit code is not
    the SIGTERM the executor sends the others. Its unfinished task is the lost one; emits
    task.lost for it and says so in words: (English, Chinese).
    """
    dead = [w for w in workers if w.exitcode is not None and w.exitcode not in
            (0, -signal.SIGTERM)] or [w for w in workers if w.exitcode not in (None, 0)]
    for w in dead:
        for i, pid in enumerate(watch.started):
            if pid == w.pid and not watch.done[i]:
                why = ("its worker (pid %d) died (%s) in the middle of it, and "
                       "ProcessPoolExecutor raised BrokenProcessPool"
                       % (pid, exit_words(w.exitcode, "en")))
                emit("task.lost", task=i, pid=pid, label=watch.names[i],
                     label_zh=watch.names_zh[i], exitcode=w.exitcode,
                     why="its worker died; ProcessPoolExecutor raised BrokenProcessPool")
                return ("%s was lost: %s: every pending item failed, and the executor "
                        "ended its other workers" % (watch.names[i], why),
                        "%s 丢失了：执行它的工作进程（pid %d）在中途死掉了（%s），"
                        "ProcessPoolExecutor 抛出了 BrokenProcessPool：所有待处理的项都失败了，"
                        "执行器结束了它的其他工作进程"
                        % (watch.names_zh[i], pid, exit_words(w.exitcode, "zh")))
    pids = ", ".join("%d (%s)" % (w.pid or 0, exit_words(w.exitcode, "en")) for w in dead)
    pids_zh = "，".join("%d（%s）" % (w.pid or 0, exit_words(w.exitcode, "zh")) for w in dead)
    return ("a worker died (pid %s) between two tasks, and ProcessPoolExecutor raised "
            "BrokenProcessPool: every pending item failed" % (pids or "?"),
            "一个工作进程（pid %s）在两个任务之间死掉了，ProcessPoolExecutor 抛出了 "
            "BrokenProcessPool：所有待处理的项都失败了" % (pids_zh or "?"))


# How a worker's exit reads, in each language of the page: by a signal's name, by a
# signal's number, by an exit code.
EXIT_WORDS: dict[Lang, tuple[str, str, str]] = {
    "en": ("killed by %s", "killed by signal %d", "exit code %s"),
    "zh": ("被 %s 杀死", "被信号 %d 杀死", "退出码 %s"),
}


def exit_words(exitcode: int | None, lang: Lang) -> str:
    """-9 is 'killed by SIGKILL' ('被 SIGKILL 杀死'), 1 'exit code 1' ('退出码 1')."""
    by_name, by_number, by_code = EXIT_WORDS[lang]
    if exitcode is not None and exitcode < 0:
        try:
            return by_name % signal.Signals(-exitcode).name
        except ValueError:
            return by_number % -exitcode
    return by_code % exitcode
