"""The run manager: the server's runs, from POST to final status, and their caps.

Runs in the server, on its event loop (blocking waits go to threads of its own). A run's
life, as the API shows it:

    queued ─► running ─► succeeded | failed | cancelled | timed_out | interrupted

    create(): caps checked, app.live.launcher.launch() starts the run's main
    the relay reads EOF ─► app.live.launcher.finish() in a stopper thread ─► run.end
    run.end reaches the manager (_on_events) ─► the status it says becomes final

The manager builds none of run.end (app.pipe.ledger does); it reads it. So a final status is
only ever seen once every process of the run is gone and the last event is in the log.

With a RunStore (app.history.sqlite_hub), each run's record is saved when it starts and when it
ends, and a server that starts again lists every run as it was (app.live.run_restore).
The manager is the one owner of runs, lessons' and traced programs'
(app.live.program_runs); what a lifecycle event changes in a run's record is
app.live.run_lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import resource
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from procscope.kernel import procgroup
from procscope.kernel.cpu_lanes import choose_cpu_lanes, follow
from procscope.kernel.sampler import Sampler
from procscope.live.launcher import finish, launch, remove_stale_workdirs
from procscope.live.program_runs import finish_program, open_program_run
from procscope.live.run_lifecycle import APPLIED, apply_event
from procscope.live.run_record import Run, now
from procscope.live.run_restore import restore
from procscope.live.said import said
from procscope.pipe.events import Event
from procscope.pipe.ledger import FINAL
from procscope.pipe.relay import Relay
from procscope.settings import Settings
from procscope.streams.hub import Hub, RunStore

log = logging.getLogger("procscope.live.runs")

STOP_THREADS = 8  # runs being stopped or finished at once (the default --max-runs)
T = TypeVar("T")


class CapReached(Exception):
    """A global cap stops a new run; the message says which and how to get past it."""


class RunLive(Exception):
    """Only a finished run can be forgotten."""


class RunManager:
    """Starts, follows and stops runs; the only owner of run processes in the server."""

    def __init__(self, hub: Hub, settings: Settings, stop_grace: float = 1.0,
                 store: RunStore | None = None) -> None:
        self.hub = hub
        self.store = store
        self.max_db_bytes = int(settings.max_db_mb * 2**20)
        self.run_timeout = settings.run_timeout
        self.stop_grace = stop_grace
        self.max_events = settings.max_events
        self.max_runs = settings.max_runs
        self.max_processes = settings.max_processes
        self.keep_runs = settings.keep_runs
        self.runs: dict[str, Run] = {}
        # Told of each run as it starts, on the loop (app.classroom.classroom: every page follows).
        self.on_created: list[Callable[[Run], None]] = []
        self._ids: Iterator[int] = itertools.count(1)  # app.cluster.cluster_runs: from Redis
        self._loop: asyncio.AbstractEventLoop | None = None
        self.relay = Relay(self._deliver_threadsafe, self._eof_threadsafe,
                           hidden=settings.token)
        self.sampler = Sampler(self.relay, settings.sample_hz, settings.sample_budget)
        self.relay.on_proc_start = self.sampler.add_pid
        self.cpu_lanes = choose_cpu_lanes(settings.cpu_lanes)
        # Stopping and finishing runs wait (for a grace period, for /proc to empty): they
        # get threads of their own, all started up front, so that the server's thread
        # count is the same before and after any number of runs.
        self._stoppers = ThreadPoolExecutor(STOP_THREADS, thread_name_prefix="procscope-stop")

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # The sampler keeps a stat file open per process and thread of live runs, and each
        # viewer holds a socket: 1024, a common soft limit, is not enough for a class.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < want:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            except (ValueError, OSError):
                log.warning("could not raise the open-files limit from %s", soft)
        procgroup.become_subreaper()
        if self.cpu_lanes["mode"] == "sampled":
            log.warning("core lanes: %s", self.cpu_lanes["detail"])
        else:
            log.info("core lanes: %s", self.cpu_lanes["detail"])
        for path in remove_stale_workdirs():
            log.info("removed %s, left by a server that is gone", path)
        ready = threading.Barrier(STOP_THREADS + 1)
        for _ in range(STOP_THREADS):
            self._stoppers.submit(ready.wait)
        ready.wait()
        self.relay.start()
        self.sampler.start()
        if self.store is not None:
            ending = self._restore(self.store)
            await asyncio.gather(*(run.finished.wait() for run in ending))
            self._forget_old_runs()
            self.store.on_size.append(lambda _: self._forget_over_size())

    def _restore(self, store: RunStore) -> list[Run]:
        """The runs of the history, as they were; those left live are being ended."""
        self._ids = itertools.count(store.next_run_id())
        runs, ending = restore(store, self.hub, self.relay, self._save)
        self.runs.update((run.id, run) for run in runs)
        return ending

    async def shutdown(self) -> None:
        """Stop every live run (escalation), wait for their run.end, stop the relay."""
        live = [run for run in self.runs.values() if run.status not in FINAL]
        await asyncio.gather(*(self.cancel(run.id, "cancelled") for run in live))
        await asyncio.gather(*(run.finished.wait() for run in live))
        self.sampler.stop()
        self.relay.stop()
        self._stoppers.shutdown(wait=True)

    # --- the API's verbs ---

    def _check_caps(self) -> None:
        live = [r for r in self.runs.values() if r.status not in FINAL]
        if len(live) >= self.max_runs:
            raise CapReached(said("%(live)s runs are live, the cap is %(cap)s: "
                                  "wait for one to end or cancel one",
                                  live=len(live), cap=self.max_runs))
        processes = sum(r.processes_live for r in live)
        if processes >= self.max_processes:
            raise CapReached(said("%(processes)s processes of runs are alive, the cap is "
                                  "%(cap)s", processes=processes, cap=self.max_processes))

    def create(self, experiment: str, params: dict[str, Any]) -> Run:
        """Start a run now. Called on the event loop."""
        self._check_caps()
        run = Run(id=str(next(self._ids)), experiment=experiment, params=params)
        self.runs[run.id] = run
        self.hub.open(run.id)
        process, run.workdir = launch(self.relay, run.id, experiment, params,
                                      self.max_events,
                                      before_gate=functools.partial(self._follow, run.id))
        run.process = process
        assert process.pid is not None
        run.pid = process.pid
        run.status = "running"
        run.started_at = now()
        assert self._loop is not None
        run.timer = self._loop.call_later(
            self.run_timeout, lambda: asyncio.ensure_future(self.cancel(run.id, "timed_out")))
        log.info("run %s: %s started, main pid %s", run.id, experiment, process.pid)
        for listener in self.on_created:
            listener(run)
        self._save(run)
        return run

    def create_program(self, program: dict[str, Any], peer_pid: int) -> tuple[Run, int]:
        """A run of kind `program`: only ever from app.trace.program_socket (a process of this
        user on this machine), never from the web API. Returns the run and the write end
        of its pipe, for `procscope trace` to hand to the program. Called on the loop.

        No run timeout: it is the user's own program, which runs as long as it would
        without procscope (the teacher can still cancel it).
        """
        self._check_caps()
        run = Run(id=str(next(self._ids)), experiment="program", params={}, kind="program",
                  program=program, peer_pid=peer_pid)
        assert self._loop is not None
        run.main_exit = self._loop.create_future()
        self.runs[run.id] = run
        self.hub.open(run.id)
        write_fd = open_program_run(run, self.relay, self.max_events)
        log.info("run %s: program %s (from pid %s)", run.id, program["command"], peer_pid)
        for listener in self.on_created:
            listener(run)
        self._save(run)
        return run, write_fd

    def follow_program(self, run_id: str, pid: int) -> bool:
        """The program's main is started and waits at its gate: follow it (exactly, where
        the kernel allows), then it may go. False if the run was cancelled meanwhile."""
        run = self.runs[run_id]
        if run.stop_reason is not None:
            return False
        run.pid = pid
        run.status = "running"
        run.started_at = now()
        self._follow(run_id, pid, run.t0_ns)
        self._save(run)
        return True

    def program_exited(self, run_id: str, exitcode: int | None) -> None:
        """`procscope trace` saw the program's main exit (or went away: None)."""
        run = self.runs.get(run_id)
        if run is not None and run.main_exit is not None and not run.main_exit.done():
            run.main_exit.set_result(exitcode)

    async def written(self) -> None:
        """Return once all runs and events so far are on disk (at once without a store)."""
        if self.store is not None:
            await self.store.written()

    def history_status(self) -> dict[str, Any]:
        """For /api/status's `history`: the store's file and how its writer does, or
        {"db": ":memory:"} without one."""
        return self.store.status() if self.store is not None else {"db": ":memory:"}

    def cluster_status(self) -> dict[str, Any] | None:
        """For /api/status's `cluster`: None, a server of its own (ClusterRuns says one)."""
        return None

    def next_id(self) -> str:
        """A new run's id, taken now (for a run brought in with adopt())."""
        return str(next(self._ids))

    def adopt(self, run: Run, events: Sequence[Event]) -> Run:
        """A finished run from elsewhere (app.history.run_import): its record (final, as its log
        says) and its whole log, kept like any run's. On the loop, with an id from next_id()."""
        self.runs[run.id] = run
        self.hub.open(run.id)
        run.events = len(events)
        self.hub.append(run.id, events)
        run.finished.set()
        self._save(run)
        log.info("run %s: %s imported, %d events", run.id, run.experiment, len(events))
        self._forget_old_runs()
        return run

    def forget(self, run_id: str) -> None:
        """Forget a finished run: its record, its log and its events (KeyError, RunLive)."""
        if self.runs[run_id].status not in FINAL:
            raise RunLive(f"run {run_id} is live: cancel it first (DELETE /api/runs/{run_id})")
        del self.runs[run_id]
        self.hub.forget(run_id)
        log.info("run %s forgotten", run_id)

    def _follow(self, run_id: str, main_pid: int, t0_ns: int) -> None:
        """Start following a run's main before its gate opens: exactly, where we can."""
        follow(self.sampler, self.relay, self.cpu_lanes, run_id, main_pid, t0_ns)

    async def cancel(self, run_id: str, reason: str = "cancelled") -> Run:
        """Stop a run by escalation; returns once its final status is set."""
        run = self.runs[run_id]
        if run.status in FINAL:
            return run
        if run.stop_reason is None:
            run.stop_reason = reason
        if run.pid is None:  # a program not started yet: it never will be (follow_program)
            await run.finished.wait()
            return run
        pgid = run.pid  # the main called setsid(): its pid is the group's id
        how = await self._blocking(procgroup.stop_group, pgid, self.stop_grace,
                                   frozenset({pgid}), run.reaped)
        log.info("run %s: %s (pgid %s): %s", run_id, reason, pgid, how)
        await run.finished.wait()
        return run

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._stoppers, fn, *args)

    # --- from the relay thread ---

    def _deliver_threadsafe(self, run_id: str, events: list[Event]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            self._loop.call_soon_threadsafe(self._on_events, run_id, events)

    def _eof_threadsafe(self, run_id: str) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(
                lambda: asyncio.ensure_future(self._finish(self.runs[run_id])))

    # --- on the loop ---

    def _on_events(self, run_id: str, events: Sequence[Event]) -> None:
        run = self.runs[run_id]
        for event in events:
            if event.kind in APPLIED:  # a flood's batch is mostly other kinds: no call
                apply_event(run, event.kind, event)
        run.events += len(events)
        self.hub.append(run_id, events)
        if run.status in FINAL and not run.finished.is_set():
            if run.timer is not None:
                run.timer.cancel()
            self._save(run)
            run.finished.set()
            self._forget_old_runs()

    def _save(self, run: Run) -> None:
        if self.store is not None:
            self.store.save_run(run.record())

    def _forget_old_runs(self) -> None:
        """Keep the newest `keep_runs` finished runs: a day of classes must not grow the
        server without bound. A forgotten run's API, stream and page answer 404."""
        finished = [r for r in self.runs.values() if r.status in FINAL]
        for old in finished[:max(0, len(finished) - self.keep_runs)]:
            del self.runs[old.id]
            self.hub.forget(old.id)
        self._forget_over_size()

    def _forget_over_size(self) -> None:
        """Past --max-db-mb, forget the oldest finished run; told the size again after each
        commit, the store says when that forget is done, and the next goes if need be."""
        store = self.store
        if store is None or store.size <= self.max_db_bytes or store.forgetting():
            return
        for old in self.runs.values():
            if old.status in FINAL:
                log.info("run %s forgotten: the history is %.1f MB, over --max-db-mb %s",
                         old.id, store.size / 2**20, self.max_db_bytes / 2**20)
                del self.runs[old.id]
                self.hub.forget(old.id)
                return

    async def _finish(self, run: Run) -> None:
        """Every holder of the run's pipe has exited: end the run for good."""
        self.sampler.unwatch(run.id)
        if run.kind == "program":
            await finish_program(run, self.relay, lambda pgid: self._blocking(
                procgroup.wait_until_gone, pgid, self.stop_grace, {pgid}, run.reaped))
            return
        assert run.process is not None
        await self._blocking(functools.partial(
            finish, self.relay, run.id, run.process, run.workdir, run.stop_reason,
            self.stop_grace, reaped=run.reaped))
