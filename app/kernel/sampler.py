"""The kernel sampler: what the scheduler really did with each process of a live run.

Runs in the server, in one thread for all runs. A process that says "I am on core 1" at
one instant says nothing about the time in between, and a process asleep in
lock.acquire() is on no core at all. So, each pass, this thread reads /proc/<pid>/stat of
every process of every live run (and /proc/<pid>/task/<tid>/stat of each thread, where a
process has several) and reports a `proc.state` event only when something changed: the
state (R S D Z T X), the core it last ran on, the parent.

The core lanes are `cpu.run` stretches (app.kernel.cpu_spans). Where the kernel allows, they come
from its context-switch records (app.kernel.switches, exact; the run's recorder is drained each
pass) and the passes only follow states, at STATES_HZ. Elsewhere each pass also reads every
thread's schedstat and turns each period's share of run time into stretches; then the
passes run as often as the CPU budget allows, up to `hz`: a lesson with three processes is
sampled at 1-2 kHz for a few percent of a core, one with hundreds much less often, and the
run is told (`sampler.rate`) when the rate moves.

Which pids: the relay tells us each `proc.start` at once; a slower scan of /proc finds
the run's processes that never report (a forkserver, a resource tracker). Processes that
live and die between two samples still have the proc.start / proc.exit they reported
themselves: the sampler adds what the kernel saw, it never invents or loses a process.

Which pids, which passes, when the core lanes are exact. The scan of /proc reads the stat
of every process on the machine (~1-2 ms with a 100-process run, every 0.2 s, on the
lesson's cores): with a recorder, the kernel's FORK records name every new process of the
tree instead, and the scan runs only if the recorder lost records. And a thread's state
(R S D Z T) only changes at one of its switches, which the recorder reports (a stretch, or
on a core now), or while it waits runnable (last seen R), or when it is woken (S to R) or
re-parented, which it does not: so a pass reads the stat of the processes that switched,
were last seen runnable, or are new, and every process FULL_EVERY (and at the next pass
after any process turned zombie or went, whose orphans were just re-parented). A
100-process lesson asleep is then read a tenth as often, with no state change missed; a
wake-up that has not run yet is seen up to FULL_EVERY late.

The server is a child subreaper (procgroup.become_subreaper), so a run's orphans are
re-parented to it; when one of them turns zombie here, it is reaped by pid (never
waitpid(-1), which would steal multiprocessing's exit statuses) and reported.

(Past ~300 lines on purpose: one pass is one loop over the run's processes, and which of
them it reads, exactly or sampled, only makes sense read with that loop.)
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from procscope.kernel import procgroup
from procscope.kernel.cpu_spans import ExactSpans, SampledSpans
from procscope.kernel.proc_files import Watched
from procscope.kernel.switches import SwitchRecorder
from procscope.pipe.events import reaped_by_server, server_event
from procscope.pipe.relay import Relay
from procscope.worker_thread import WorkerThread

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DISCOVER_EVERY = 0.2  # seconds between two scans of /proc for unreported processes
FULL_EVERY = 0.1  # exact runs: seconds between two passes that read every process
# A process the FORK records named and that has not reported itself may be a helper: its
# cmdline says so once it has exec'd (until then it is its parent's). It is read at these
# ages (s) after the fork until the process reports, goes or is found to be one: a few
# times, not every pass (reading a cmdline takes the target's mm lock, and under load 100
# starting buyers report late: that was ~100 reads a pass).
HELPER_CHECKS = (0.01, 0.1, 1.0)
STATES_HZ = 100.0  # passes per second when no run needs sampled core lanes
HELPERS = (("multiprocessing.forkserver", "forkserver"),
           ("multiprocessing.resource_tracker", "resource_tracker"))

Events = list[dict[str, Any]]


class Sampler:
    """One thread sampling /proc for every live run; see the module docstring."""

    def __init__(self, relay: Relay, hz: float = 2000.0, budget: float = 0.15) -> None:
        if not 1 <= hz <= 5000:
            raise ValueError(f"sample rate must be 1..5000 Hz, got {hz}")
        if not 0 < budget <= 1:
            raise ValueError(f"sampler budget must be in (0, 1] of a core, got {budget}")
        self.relay = relay
        self.max_hz = hz
        # A pass costs ~10-20 µs per process (reading /proc is a syscall that builds
        # text): past `budget` (a share of one core) the sampler slows down, and says so
        # with a sampler.rate event: coarser, but the lesson keeps its cores.
        self.budget = budget
        self.hz = hz  # the rate achieved lately, as last reported to sampled runs
        self._cost = 0.0  # CPU seconds per pass, smoothed
        self._lock = threading.Lock()
        self._runs: dict[str, Watched] = {}
        self._stop = threading.Event()
        self._thread = WorkerThread("procscope-sampler", self._loop)
        self._me = os.getpid()
        self.samples = 0  # how many sampling passes ran (for the cost figures)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop(self._stop.set)

    def watch(self, run_id: str, main_pid: int, t0_ns: int,
              recorder: SwitchRecorder | None = None) -> None:
        """Follow a run; with a recorder its core lanes are exact, else sampled."""
        watched = Watched(run_id, main_pid, t0_ns, {main_pid}, recorder=recorder,
                          spans=SampledSpans(t0_ns, emit=recorder is None),
                          exact=ExactSpans(t0_ns) if recorder is not None else None)
        watched.pids.add(main_pid)
        with self._lock:
            self._runs[run_id] = watched

    def add_pid(self, run_id: str, pid: int) -> None:
        """Called by the relay thread on each proc.start."""
        with self._lock:
            watched = self._runs.get(run_id)
            if watched is not None:
                watched.pids.add(pid)
                watched.reported.add(pid)

    def unwatch(self, run_id: str) -> None:
        """Stop sampling a run; its last stretches are injected before this returns, and
        nothing more after."""
        with self._lock:
            w = self._runs.pop(run_id, None)
            if w is None:
                return
            events, _ = self._drain(w)
            assert w.spans is not None
            events += w.spans.flush()
            if w.exact is not None:
                events += w.exact.flush()
            if w.recorder is not None and (w.recorder.lost or w.recorder.broken):
                # Never hidden: the kernel dropped switch records (a ring was full).
                events.append(server_event("cpu.lanes", {
                    "mode": "exact", "lost": w.recorder.lost, "broken": w.recorder.broken,
                    "detail": f"{w.recorder.lost} switch records were lost (a ring was "
                              f"full); {w.recorder.broken} stretches around them are not "
                              "drawn"}, t_ns=time.monotonic_ns()))
            w.close()
        if events:
            self.relay.inject(run_id, events)

    def open_files(self) -> int:
        with self._lock:
            return sum(w.open_files() for w in self._runs.values())

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            cpu = time.thread_time()
            with self._lock:
                for watched in self._runs.values():
                    self._sample(watched)
                self._cost = 0.8 * self._cost + 0.2 * (time.thread_time() - cpu)
                sampled = any(w.recorder is None for w in self._runs.values())
                period = max(1.0 / (self.max_hz if sampled else min(self.max_hz, STATES_HZ)),
                             self._cost / self.budget)
                if sampled:
                    self._report_rate(1.0 / period)
            self.samples += 1
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind (a busy machine): skip, don't burst
                next_tick = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _report_rate(self, hz: float) -> None:
        """Tell the sampled runs when the sampling rate moves by a quarter or more."""
        if abs(hz - self.hz) < 0.25 * self.hz:
            return
        self.hz = hz
        t = time.monotonic_ns()
        for w in self._runs.values():
            if w.recorder is None:
                self.relay.inject(w.run_id, [server_event(
                    "sampler.rate", {"hz": round(hz, 1), "resolution_ms": round(1e3 / hz, 2),
                                     "budget": self.budget}, t_ns=t)])

    def _sample(self, w: Watched) -> None:
        t = time.monotonic_ns()
        events, switched = self._drain(w)
        now = time.monotonic()
        if w.unannounced:
            self._announce_forked(w, events, t, now)
        if now >= w.next_discovery:
            self._discover(w, events, t)
        spans = w.spans
        assert spans is not None
        # Exact runs: only the processes whose state may have changed (module docstring).
        full = switched is None or now >= w.next_full
        if full:
            w.next_full = now + FULL_EVERY
        for pid in list(w.pids):
            if not full and switched is not None and pid not in switched \
                    and pid not in w.runnable and pid in w.ppids:
                continue
            stat = w.stat((pid, pid))
            if stat is None:
                self._gone(w, pid, events, t)
                w.next_full = 0.0  # its orphans, if any, have a new parent
                continue
            if stat.state in ("Z", "X") and w.last.get((pid, pid), ("R",))[0] not in "ZX":
                w.next_full = 0.0  # it just exited: its orphans have a new parent
            threads = [stat]
            if stat.num_threads > 1 or pid in w.threads:
                threads = self._threads(w, pid, events, t) or [stat]
            w.runnable.discard(pid)  # added back below by any thread seen R
            ppid = stat.ppid
            if stat.state == "X" and ppid == 0:  # dying, not re-parented: keep its parent
                ppid = w.ppids.get(pid, ppid)
            w.ppids[pid] = ppid
            for th in threads:
                key = (pid, th.pid)
                share = None
                if spans.emit or th.state == "R":
                    run_ns = w.run_ns(key)
                    if run_ns is not None:
                        # Stamped as read, not once per pass: this thread may wait for the
                        # server's GIL between two reads (3-8 % of the time was lost so).
                        share, closed = spans.reading(pid, th.pid, time.monotonic_ns(),
                                                      run_ns, th.processor)
                        events += closed
                else:
                    spans.forget(pid, th.pid)
                # Rounded to tenths, so that a steady share makes no new events.
                oncpu = round(share if share is not None else 1.0, 1) \
                    if th.state == "R" else 0.0
                now_state = (th.state, th.processor, ppid, oncpu)
                if th.state == "R":
                    w.runnable.add(pid)
                if w.last.get(key) == now_state:
                    continue
                w.last[key] = now_state
                data: dict[str, Any] = {"state": th.state, "cpu": th.processor, "ppid": ppid}
                if th.state == "R":
                    data["oncpu"] = oncpu
                if len(threads) > 1 or th.pid != pid:
                    data["tid"] = th.pid
                if th.state == "Z" and th.pid == pid:
                    data["cpu_time"] = (stat.utime + stat.stime) / CLOCK_TICKS
                events.append(server_event("proc.state", data, t_ns=t, pid=pid, ppid=ppid,
                                           cpu=th.processor))
            if stat.state == "Z" and stat.ppid == self._me and pid not in w.own_children:
                self._reap(w, pid, events, t)
        if events:
            self.relay.inject(w.run_id, events)

    def _drain(self, w: Watched) -> tuple[Events, set[int] | None]:
        """The exact stretches the run's recorder has finished since the last pass, and the
        pids that switched since (None: no recorder, every pid is to be read)."""
        if w.recorder is None or w.exact is None:
            return [], None
        finished, running = w.recorder.drain(), w.recorder.running()
        switched = {s.pid for s in finished}
        switched.update(r.pid for r in running)
        now = time.monotonic()
        for pid, ppid in w.recorder.new_processes():
            w.pids.add(pid)
            w.unannounced.append((pid, ppid, now, 0))
        return w.exact.add(finished, running), switched

    def _announce_forked(self, w: Watched, events: Events, t: int, now: float) -> None:
        """The new processes the FORK records named that did not report: helpers?"""
        waiting = []
        for pid, ppid, seen, checks in w.unannounced:
            if pid in w.reported or pid not in w.pids or ppid in w.helpers:
                continue  # it reports itself, or is gone (a forkserver's children report)
            if now - seen < HELPER_CHECKS[checks]:
                waiting.append((pid, ppid, seen, checks))
            elif not self._announce_helper(w, pid, events, t) \
                    and checks + 1 < len(HELPER_CHECKS):
                waiting.append((pid, ppid, seen, checks + 1))
        w.unannounced = waiting

    def _discover(self, w: Watched, events: Events, t: int) -> None:
        w.next_discovery = time.monotonic() + DISCOVER_EVERY
        if w.recorder is not None and not w.recorder.lost:
            return  # the FORK records named every process of the tree (_drain)
        for p in sorted(procgroup.members(w.pgid)):
            if p.pid not in w.pids:
                w.pids.add(p.pid)
                if p.ppid not in w.helpers:  # a forkserver's children report themselves
                    self._announce_helper(w, p.pid, events, t)

    def _gone(self, w: Watched, pid: int, events: Events, t: int) -> None:
        """A process of the run is gone from /proc (reaped)."""
        w.pids.discard(pid)
        w.forget_process(pid)
        w.threads.pop(pid, None)
        assert w.spans is not None
        events += w.spans.gone(pid)
        if pid in w.helpers:
            events.append(server_event("proc.exit", {"exitcode": None, "source": "kernel"},
                                       t_ns=t, pid=pid))

    def _announce_helper(self, w: Watched, pid: int, events: Events, t: int) -> bool:
        """multiprocessing's own helpers never report: the kernel introduces them.

        A forkserver or a resource tracker is exec'd, not forked from a process of the
        run, so no reporter runs in it; it is still a process of the run, and shown.
        """
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        for marker, name in HELPERS:
            if marker in cmdline:
                w.helpers.add(pid)
                events.append(server_event("proc.start", {
                    "role": "helper", "name": name, "daemon": False, "source": "kernel"},
                    t_ns=t, pid=pid, proc=name))
                return True
        return False

    def _threads(self, w: Watched, pid: int, events: Events,
                 t: int) -> list[procgroup.ProcStat]:
        """The stat of each thread of a process; a thread that has ended says so, once."""
        try:
            tids = {int(tid) for tid in os.listdir(f"/proc/{pid}/task")}
        except OSError:
            return []
        seen = w.threads.setdefault(pid, set())
        assert w.spans is not None
        for tid in sorted(seen - tids):
            w.forget((pid, tid))
            w.last.pop((pid, tid), None)
            events += w.spans.gone(pid, tid)
            events.append(server_event("thread.exit", {"tid": tid, "source": "kernel"},
                                       t_ns=t, pid=pid))
        seen &= tids
        seen |= tids - {pid}
        found = []
        for tid in sorted(tids):
            stat = w.stat((pid, tid))
            if stat is not None:
                found.append(stat)
        return found

    def _reap(self, w: Watched, pid: int, events: Events, t: int) -> None:
        """An orphan of the run, adopted by the server, has exited: collect it."""
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if reaped:
            events.append(reaped_by_server(pid, os.waitstatus_to_exitcode(status), t))
