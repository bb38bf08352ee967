"""A run's events as a Chrome Trace Event Format file (`trace.json`): Perfetto, speedscope.

Runs in the server (`GET /api/runs/{id}/trace.json`) and in `procscope export`. One pure
function, `to_trace(events)`, of the events as the streams carry them (docs/api.md, "The
event"), in seq order; nothing else is read. (Past ~300 lines: one format, and every kind of
track in it, each small, read best together.)

    synthetic pid 1  "CPU cores"           a thread per core: X slices of who ran there (cpu.run)
    synthetic pid 2  "procscope (server)"  run.start, run.end, cpu.lanes ... as instants; the
                                           counters: lock (waiters, held), queue depth, sold
    synthetic pid 3+ one per process of the run, in order of start: its life
                     (proc.start -> proc.exit) and its zombie time (-> proc.reap) as X slices
                     on its main thread, its waits (lock, join, task, queue full, conn, handler)
                     on the thread that waited, its prints and lesson events as instants

Why synthetic pids and tids: the OS reuses pids (a 100-buyer rush can get a pid back that
an earlier buyer had), and Perfetto takes tids as system-wide; so every process of the run
*as it lived* (an incarnation: a proc.start of a pid that had exited is a new one) gets a
pid of its own here, and every thread a tid unique in the whole file. The OS pid and tid
stay in the names ("buyer-17 [pid 4242]") and in each slice's args.

Slices on one track never overlap partially: X slices on a process's thread nest like a
call stack (the life holds the waits), which is what both tools draw; on a core track X
slices never overlap at all (a core runs one thread at a time, but near stretches of one
thread are merged into one with its `share`, so a merged stretch can cover another's).
Whatever would break either rule becomes an async slice (`b`/`e`, with an id) instead.
Times are µs since run.start (`ts`, `dur`), integers: the events' `t` has 6 decimals.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

CORES_PID = 1
SERVER_PID = 2
SERVER_PROC = "procscope"
# Lifecycle kinds of the run itself: instants on the server's track, global in scope.
RUN_KINDS = frozenset({"run.start", "run.end", "run.result", "run.error"})

Key = Callable[[dict[str, Any]], Any]


def _data(e: dict[str, Any]) -> dict[str, Any]:
    data = e.get("data")
    return data if isinstance(data, dict) else {}


# A wait (or a stretch of work) is a begin kind and an end kind on the same thread, matched
# by a key from the data: begin kind -> (end kinds, key, the slice's name).
PAIRS: dict[str, tuple[frozenset[str], Key, Callable[[dict[str, Any]], str]]] = {
    "lock.wait": (frozenset({"lock.acquire"}), lambda d: None, lambda d: "waiting for the lock"),
    "lock.acquire": (frozenset({"lock.release"}), lambda d: None, lambda d: "holding the lock"),
    "join.wait": (frozenset({"join.done"}),
                  lambda d: d.get("child") or d.get("name") or d.get("what"),
                  lambda d: "join " + str(d.get("name") or d.get("what") or d.get("child"))),
    "task.start": (frozenset({"task.end"}), lambda d: d.get("task", d.get("url")),
                   lambda d: f"task {d.get('task', d.get('url', ''))}".strip()),
    "conn.wait": (frozenset({"conn.reply"}), lambda d: d.get("message"),
                  lambda d: f"waiting for reply {d.get('message', '')}".strip()),
    "handler.start": (frozenset({"handler.end", "handler.error"}), lambda d: d.get("conn"),
                      lambda d: f"handling conn {d.get('conn', '')}".strip()),
}
# queue.full comes twice from one put: first with `waiting` (the timeout it will wait),
# then with `raised`: the wait is the time between.
QUEUE_FULL = "queue.full"
ENDS = frozenset(end for ends, _, _ in PAIRS.values() for end in ends)


@dataclass
class _Slice:
    t0: int
    t1: int
    name: str
    cat: str
    args: dict[str, Any]


@dataclass
class _Thread:
    tid: int  # synthetic
    os_tid: int | None
    name: str
    slices: list[_Slice] = field(default_factory=list)
    open: dict[tuple[str, Any], tuple[int, str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class _Proc:
    pid: int  # synthetic
    os_pid: int | None
    name: str
    start: int | None = None  # µs
    exit: int | None = None
    args: dict[str, Any] = field(default_factory=dict)
    threads: dict[int | None, _Thread] = field(default_factory=dict)  # os tid (None: main)


def _us(t: Any) -> int:
    return round(float(t) * 1_000_000)


class _Builder:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.out: list[dict[str, Any]] = []
        self._tids = 0
        self._async = 0
        self.end = max((_us(e.get("t", 0)) for e in events), default=0)
        self.cores: dict[int, _Thread] = {}
        self.server = _Proc(SERVER_PID, None, "procscope (server)")
        self._thread(self.server, None, "procscope")
        self.procs: list[_Proc] = []
        # os pid -> its incarnations' start times and procs, in time order
        self._lives: dict[int, tuple[list[int], list[_Proc]]] = {}
        self._incarnations()

    # --- who is who ---

    def _new_tid(self) -> int:
        self._tids += 1
        return self._tids

    def _thread(self, proc: _Proc, os_tid: int | None, name: str) -> _Thread:
        thread = proc.threads.get(os_tid)
        if thread is None:
            thread = proc.threads[os_tid] = _Thread(self._new_tid(), os_tid, name)
        return thread

    def _new_proc(self, os_pid: int | None, name: str, start: int | None) -> _Proc:
        proc = _Proc(len(self.procs) + SERVER_PID + 1, os_pid, name, start)
        self.procs.append(proc)
        self._thread(proc, None, name)
        return proc

    def _incarnations(self) -> None:
        """Every proc.start is a process; a pid started again after its exit is a new one."""
        exited: set[int] = set()
        for e in self.events:
            pid = e.get("pid")
            if not isinstance(pid, int) or e.get("proc") == SERVER_PROC:
                continue
            kind = e.get("kind")
            if kind == "proc.start":
                lives = self._lives.get(pid)
                if lives is not None and pid not in exited:
                    continue  # a second proc.start of a live process: the same one
                data = _data(e)
                name = str(data.get("name") or e.get("proc") or f"pid {pid}")
                proc = self._new_proc(pid, name, _us(e["t"]))
                proc.args = {"os_pid": pid, "ppid": e.get("ppid"), "role": data.get("role"),
                             "daemon": data.get("daemon")}
                starts, procs = self._lives.setdefault(pid, ([], []))
                starts.append(_us(e["t"]))
                procs.append(proc)
                exited.discard(pid)
            elif kind == "proc.exit":
                exited.add(pid)

    def proc_of(self, e: dict[str, Any], pid: Any = None, t: int | None = None) -> _Proc:
        """The process an event belongs to: its pid's incarnation at the event's time."""
        pid = e.get("pid") if pid is None else pid
        if not isinstance(pid, int) or (e.get("proc") == SERVER_PROC and pid == e.get("pid")):
            return self.server
        t = _us(e.get("t", 0)) if t is None else t
        lives = self._lives.get(pid)
        if lives is None:  # seen only by the kernel sampler, say: a process all the same
            proc = self._new_proc(pid, str(e.get("proc") or f"pid {pid}"), None)
            proc.args = {"os_pid": pid}
            lives = self._lives[pid] = ([-(1 << 62)], [proc])
        starts, procs = lives
        return procs[max(0, bisect.bisect_right(starts, t) - 1)]

    def thread_of(self, proc: _Proc, os_tid: Any, thread_name: Any = None) -> _Thread:
        if not isinstance(os_tid, int) or os_tid == proc.os_pid:
            return proc.threads[None]
        return self._thread(proc, os_tid, str(thread_name or f"thread {os_tid}"))

    # --- the events ---

    def build(self) -> list[dict[str, Any]]:
        counters: list[dict[str, Any]] = []
        for e in self.events:
            kind = e.get("kind")
            if not isinstance(kind, str) or "t" not in e:
                continue
            ts = _us(e["t"])
            data = _data(e)
            if kind == "cpu.run":
                self._cpu_run(e, data)
                continue
            if kind in ("lock.wait", "lock.acquire", "lock.release", "ticket.sold") \
                    or (kind.startswith("queue.") and isinstance(data.get("depth"), int | float)):
                counters.append(e)
            proc = self.proc_of(e)
            thread = self.thread_of(proc, e.get("tid"), e.get("thread"))
            if kind == "proc.start" and proc.start is None:
                proc.start = ts
            elif kind == "proc.exit":
                if proc.exit is None:
                    proc.exit = ts
                    proc.args.update(exitcode=data.get("exitcode"), source=data.get("source"))
                continue
            elif kind == "proc.reap":
                child = self.proc_of(e, data.get("child"), ts)
                child.args["reaped"] = ts
            if self._pair(thread, kind, ts, data):
                continue
            if kind == "proc.start":
                continue  # it is the life slice's beginning
            self._instant(proc, thread, kind, ts, data, e)
        self._lives_and_zombies()
        self._counters(counters)
        return self._emit()

    def _cpu_run(self, e: dict[str, Any], data: dict[str, Any]) -> None:
        cpu = data.get("cpu", e.get("cpu"))
        if not isinstance(cpu, int) or "t0" not in data or "t1" not in data:
            return
        t0, t1 = _us(data["t0"]), _us(data["t1"])
        core = self.cores.get(cpu)
        if core is None:
            core = self.cores[cpu] = _Thread(self._new_tid(), None, f"CPU {cpu}")
        proc = self.proc_of(e, t=t0)
        os_tid = data.get("tid")
        thread = self.thread_of(proc, os_tid)
        name = proc.name if thread is proc.threads[None] else f"{proc.name} · {thread.name}"
        args: dict[str, Any] = {"pid": proc.os_pid, "tid": os_tid}
        args.update((k, data[k]) for k in ("share", "preempted", "n") if k in data)
        core.slices.append(_Slice(t0, max(t0, t1), name, "cpu", args))

    def _pair(self, thread: _Thread, kind: str, ts: int, data: dict[str, Any]) -> bool:
        """A wait's beginning or end: True if the event became (part of) a slice."""
        if kind == QUEUE_FULL:
            if "waiting" in data:
                thread.open[(QUEUE_FULL, None)] = (ts, "queue full: waiting to put", dict(data))
                return True
            begun = thread.open.pop((QUEUE_FULL, None), None)
            if begun is None:
                return False
            thread.slices.append(_Slice(begun[0], ts, begun[1], "wait",
                                        {**begun[2], "end": data}))
            return True
        ended = False
        if kind in ENDS:
            for begin, (ends, key, _) in PAIRS.items():
                if kind in ends:
                    begun = thread.open.pop((begin, key(data)), None)
                    if begun is not None:
                        thread.slices.append(_Slice(begun[0], ts, begun[1],
                                                    "wait" if "wait" in begin else "work",
                                                    {**begun[2], "end": data}))
                        ended = True
        if kind in PAIRS:
            _, key, name = PAIRS[kind]
            thread.open[(kind, key(data))] = (ts, name(data), dict(data))
            return True
        return ended

    def _instant(self, proc: _Proc, thread: _Thread, kind: str, ts: int,
                 data: dict[str, Any], e: dict[str, Any]) -> None:
        if kind == "print":
            text = str(data.get("text", ""))
            name, cat = (text[:80] or "print"), "print"
        elif kind == "proc.state":
            name, cat = f"state {data.get('state')}", "kernel"
        elif proc is self.server or kind in RUN_KINDS:
            name, cat = kind, "run"
        else:
            name, cat = kind, "lesson"
        scope = "g" if kind in ("run.start", "run.end") else "t"
        self.out.append({"ph": "i", "name": name, "cat": cat, "ts": ts, "s": scope,
                         "pid": proc.pid, "tid": thread.tid,
                         "args": {"kind": kind, "seq": e.get("seq"), **data}})

    def _lives_and_zombies(self) -> None:
        for proc in self.procs:
            main = proc.threads[None]
            start = proc.start if proc.start is not None else min(
                [s.t0 for t in proc.threads.values() for s in t.slices] or [0])
            end = proc.exit if proc.exit is not None else self.end
            args = {k: v for k, v in proc.args.items() if k != "reaped"}
            if proc.exit is None:
                args["exit"] = "not seen before the run ended"
            main.slices.append(_Slice(start, max(start, end), proc.name, "process", args))
            reaped = proc.args.get("reaped")
            if proc.exit is not None and isinstance(reaped, int) and reaped > proc.exit:
                main.slices.append(_Slice(proc.exit, reaped, "zombie", "process",
                                          {"detail": "exited, not yet reaped by its parent"}))
            for thread in proc.threads.values():  # waits still open at the end: unfinished
                for begun in thread.open.values():
                    thread.slices.append(_Slice(begun[0], max(begun[0], end), begun[1],
                                                "wait", {**begun[2], "unfinished": True}))
                thread.open.clear()

    def _counters(self, events: list[dict[str, Any]]) -> None:
        """Lock waiters and holder, queue depth, tickets sold: in time order, not seq order."""
        waiting: set[int] = set()
        held = 0
        sold = 0
        tid = self.server.threads[None].tid
        for e in sorted(events, key=lambda e: float(e["t"])):
            kind, ts, data = e["kind"], _us(e["t"]), _data(e)
            who = self.proc_of(e).pid
            if kind.startswith("lock."):
                if kind == "lock.wait":
                    waiting.add(who)
                elif kind == "lock.acquire":
                    waiting.discard(who)
                    held = 1
                else:
                    held = 0
                args: dict[str, int | float] = {"waiters": len(waiting), "held": held}
                name = "lock"
            elif kind == "ticket.sold":
                sold += 1
                args, name = {"sold": sold}, "tickets sold"
            else:
                args, name = {"depth": data["depth"]}, "queue depth"
            self.out.append({"ph": "C", "name": name, "ts": ts, "pid": SERVER_PID, "tid": tid,
                             "args": args})

    # --- out ---

    def _place(self, pid: int, thread: _Thread, nest: bool) -> None:
        """The thread's slices as X where they nest (or, with nest False, never overlap),
        else as async b/e pairs."""
        stack: list[int] = []  # ends of the X slices that hold the current instant
        last_end = -(1 << 62)
        for s in sorted(thread.slices, key=lambda s: (s.t0, -s.t1)):
            if nest:
                while stack and stack[-1] <= s.t0:
                    stack.pop()
                fits = not stack or s.t1 <= stack[-1]
            else:
                fits = s.t0 >= last_end
            base = {"name": s.name, "cat": s.cat, "pid": pid, "tid": thread.tid}
            if fits:
                self.out.append({**base, "ph": "X", "ts": s.t0, "dur": s.t1 - s.t0,
                                 "args": s.args})
                stack.append(s.t1)
                last_end = s.t1
            else:
                self._async += 1
                ident = f"0x{self._async:x}"
                self.out.append({**base, "ph": "b", "ts": s.t0, "id": ident, "args": s.args})
                self.out.append({**base, "ph": "e", "ts": s.t1, "id": ident})

    def _emit(self) -> list[dict[str, Any]]:
        meta: list[dict[str, Any]] = []

        def name(pid: int, proc_name: str, order: int, threads: Iterable[_Thread]) -> None:
            meta.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                         "args": {"name": proc_name}})
            meta.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                         "args": {"sort_index": order}})
            for i, thread in enumerate(threads):
                meta.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": thread.tid,
                             "args": {"name": thread.name}})
                meta.append({"ph": "M", "name": "thread_sort_index", "pid": pid,
                             "tid": thread.tid, "args": {"sort_index": i}})

        cores = [self.cores[c] for c in sorted(self.cores)]
        for core in cores:
            self._place(CORES_PID, core, nest=False)
        for proc in self.procs:
            for thread in proc.threads.values():
                self._place(proc.pid, thread, nest=True)
        if cores:
            name(CORES_PID, "CPU cores", 0, cores)
        name(SERVER_PID, self.server.name, 1, self.server.threads.values())
        for i, proc in enumerate(self.procs):
            shown = proc.name if proc.os_pid is None else f"{proc.name} [pid {proc.os_pid}]"
            main = proc.threads[None]
            main.name = "MainThread"
            name(proc.pid, shown, 2 + i, proc.threads.values())
        # The metadata first, then everything in time order (readers do not need it, but a
        # person reading the file does).
        return meta + sorted(self.out, key=lambda ev: ev["ts"])


def to_trace(events: Iterable[dict[str, Any]], run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Trace Event Format object (JSON Object Format) of a run's events, in seq order.

    `run` (the run's JSON, GET /api/runs/{id}) goes into `otherData` only.
    """
    listed = [e for e in events if isinstance(e, dict)]
    start = next((e for e in listed if e.get("kind") == "run.start"), None)
    other: dict[str, Any] = {"exported_by": "procscope", "time": "µs since run.start",
                             "events": len(listed)}
    if start is not None:
        other.update(run=start.get("run"), experiment=_data(start).get("experiment"),
                     params=_data(start).get("params"), t0_wall=_data(start).get("t0_wall"))
    if run is not None:
        other.update(run=run.get("id"), status=run.get("status"), result=run.get("result"))
    return {"traceEvents": _Builder(listed).build(), "displayTimeUnit": "ms",
            "otherData": other}
