"""The run manager of one replica among several sharing runs through Redis (--redis).

Runs in the server, on its event loop; what it asks of Redis runs in the Redis thread
(app.cluster.redis_registry, app.cluster.redis_hub). Every replica knows every run:

    a run started here   its processes are our children, as without Redis (RunManager);
                         its record and log are written to Redis
    another's run        its record from the registry, its log read from Redis by one
                         reader task; the counters of its record follow that log
    DELETE of another's  a command to its owner (pub/sub); answered once its run.end is
                         read here, which the owner appends only when its processes are gone
    a dead owner         (its lease expired) one replica claims each of its live runs, reads
                         its log to the end and ends it `interrupted`, as a restarted server
                         ends the runs its last one left live (RunManager._restore)
    a stalled owner      (stopped past its lease, then awake: SIGSTOP, a GC pause, a lid)
                         finds its runs taken over: Redis refuses its writes to them
                         (app.cluster.redis_fence), and its lease renewal sees their new owner; it
                         stops their processes, drops what its relay still reads of them, and
                         reads their logs from Redis like any other replica's runs

Caps count the cluster's live runs and processes, as this replica sees them (the registry
and the logs it follows: a few ms behind the truth, so two replicas starting runs in the
same instant can go one past a cap).

(Past ~300 lines: one owner of runs in a cluster, whose verbs, news, lease tick and
takeovers share its bookkeeping of owners; what stands alone is apart:
app.cluster.redis_registry, app.cluster.redis_fence, app.cluster.redis_lease,
app.cluster.redis_held, app.cluster.redis_classroom.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from procscope.cluster.redis_classroom import RedisClassroom
from procscope.cluster.redis_hub import RedisHub
from procscope.cluster.redis_lease import Lease
from procscope.cluster.redis_registry import LEASE_MS, Registry
from procscope.kernel import procgroup
from procscope.live.run_lifecycle import apply_event
from procscope.live.run_record import Run
from procscope.live.runs import RunManager
from procscope.pipe.events import Event
from procscope.pipe.ledger import FINAL, Ledger
from procscope.settings import Settings
from procscope.streams.stream import Streams

log = logging.getLogger("procscope.cluster")

TICK_SECONDS = LEASE_MS / 3000  # the lease is renewed three times per its life


class ClusterIds(Iterator[int]):
    """Run ids from Redis (INCR): unique and in start order across every replica."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __next__(self) -> int:
        # Blocks the loop for one round trip (~0.1 ms here): a run's start spawns a
        # process, which costs far more, and the id must be known before it starts.
        return self.registry.hub.link.call(self.registry.take_id(), timeout=5)


class ClusterRuns(RunManager):
    """RunManager for one replica: its own runs, and everyone else's through Redis."""

    def __init__(self, hub: RedisHub, settings: Settings, url: str, streams: Streams,
                 stop_grace: float = 1.0) -> None:
        super().__init__(hub, settings, stop_grace=stop_grace)
        self.redis_hub = hub
        self.rid = hub.rid
        self.url = url  # where this replica serves (for /api/status)
        self.registry = Registry(hub)
        self.owner: dict[str, str] = {}  # run -> the replica that owns it
        self.replicas: dict[str, dict[str, Any]] = {}  # the live ones, as of the last tick
        self.streams = streams  # this replica's open streams (its load says how many)
        self._claimed: set[str] = set()
        self._fenced: set[str] = set()  # runs started here that another replica took over
        self.redis_memory: int | None = None  # Redis's used_memory, as of the last tick
        self.lease = Lease(LEASE_MS / 1000)  # our runs' events wait while it may be lapsed
        hub.lease = self.lease
        # The classroom stream and the question, the cluster's (app.web.main serves this one).
        self.classroom = RedisClassroom(hub)
        self._tasks: list[asyncio.Task[None]] = []
        hub.on_remote = self._on_remote
        hub.on_fenced = self._on_fenced
        self._ids = ClusterIds(self.registry)

    async def start(self) -> None:
        await super().start()
        self.redis_hub._note_loop()  # news comes to this loop from now on
        await self.classroom.start()
        first = await asyncio.wrap_future(self.redis_hub.link.submit(self.registry.records()))
        self._on_records(first)
        self.redis_hub.link.spawn(self.registry.listen(
            self._on_records, self._on_news, self._on_command))
        await self._tick()
        self._tasks.append(asyncio.ensure_future(self._tick_loop()))
        log.info("replica %s at %s: %d runs in the registry, %d replicas live", self.rid,
                 self.url, len(self.runs), len(self.replicas))

    async def shutdown(self) -> None:
        """Stop our own live runs (others' are theirs), leave, write what is queued."""
        for task in self._tasks:
            task.cancel()
        self.lease.stop()
        for run_id, events in self.lease.release():
            self._on_events(run_id, events)
        mine = [run for run in self.runs.values()
                if run.status not in FINAL and self.owner.get(run.id) == self.rid]
        await asyncio.gather(*(self.cancel(run.id, "cancelled") for run in mine))
        await asyncio.gather(*(run.finished.wait() for run in mine))
        self.sampler.stop()
        self.relay.stop()
        self._stoppers.shutdown(wait=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis_hub.written(), 5)
            await asyncio.wrap_future(self.redis_hub.link.submit(self.registry.leave()))
        await asyncio.to_thread(self.redis_hub.close)

    # --- the verbs that differ ---

    def create(self, experiment: str, params: dict[str, Any]) -> Run:
        run = super().create(experiment, params)
        self.owner[run.id] = self.rid
        return run

    def create_program(self, program: dict[str, Any], peer_pid: int) -> tuple[Run, int]:
        run, fd = super().create_program(program, peer_pid)
        self.owner[run.id] = self.rid
        return run, fd

    def adopt(self, run: Run, events: Sequence[Event]) -> Run:
        self.owner[run.id] = self.rid
        return super().adopt(run, events)

    async def cancel(self, run_id: str, reason: str = "cancelled") -> Run:
        run = self.runs[run_id]
        owner = self.owner.get(run_id, self.rid)
        if run.status in FINAL or owner == self.rid:
            return await super().cancel(run_id, reason)
        heard = await asyncio.wrap_future(self.redis_hub.link.submit(
            self.registry.command(owner, {"cancel": run_id, "reason": reason})))
        if not heard:
            log.warning("run %s: its owner %s is gone; it ends interrupted", run_id, owner)
        await run.finished.wait()  # its run.end, read from the log here
        return run

    async def written(self) -> None:
        await self.redis_hub.written()

    def _save(self, run: Run) -> None:
        self.redis_hub.save_run(run.record(), self.owner.get(run.id, self.rid))

    def forget(self, run_id: str) -> None:
        super().forget(run_id)
        self.owner.pop(run_id, None)

    # --- what the cluster says (on the loop) ---

    def _learn(self, run_id: str, entry: dict[str, Any]) -> None:
        """A record from the registry: a run we did not know, or another's that ended."""
        if self.owner.get(run_id) == self.rid and run_id in self.runs:
            return  # ours: we know better
        self.redis_hub.records[run_id] = entry
        self.owner[run_id] = entry["owner"]
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = Run.from_record(entry["record"])
            if run.status in FINAL:
                run.finished.set()
            else:
                run.processes_started = 0  # counted again from its log, as it is read
                run.events = 0
                self.redis_hub.follow(run_id)
            # Known runs in id order, as a single server lists them.
            self.runs = dict(sorted(self.runs.items(), key=lambda kv: int(kv[0])
                                    if kv[0].isdigit() else 0))

    def _on_records(self, entries: dict[str, dict[str, Any]]) -> None:
        for run_id, entry in entries.items():
            self._learn(run_id, entry)
        for run_id in [r for r, run in self.runs.items() if r not in entries
                       and run.status in FINAL and self.owner.get(r) != self.rid]:
            self._drop(run_id)  # forgotten elsewhere

    def _on_news(self, payload: dict[str, Any]) -> None:
        if "forget" in payload:
            self._drop(payload["forget"])
        else:
            self._learn(payload["record"]["id"], payload)

    def _drop(self, run_id: str) -> None:
        run = self.runs.get(run_id)
        if run is not None and run.status in FINAL:
            del self.runs[run_id]
            self.owner.pop(run_id, None)
            self.redis_hub.dropped(run_id)

    def _on_command(self, payload: dict[str, Any]) -> None:
        run_id = payload.get("cancel")
        if run_id in self.runs and self.owner.get(run_id) == self.rid:
            log.info("run %s: cancel asked by another replica", run_id)
            asyncio.ensure_future(self.cancel(run_id, payload.get("reason") or "cancelled"))

    def _on_events(self, run_id: str, events: Sequence[Event]) -> None:
        if run_id in self._fenced:
            return  # another replica owns the run now: what our relay still reads is not its log
        if self.lease.hold(run_id, events):
            return  # we may have stalled past our lease: shown once the next renewal says
        super()._on_events(run_id, events)

    def _on_fenced(self, run_id: str, owner: str) -> None:
        """A run started here is another's (`owner`): we stalled past our lease, and it
        ended the run `interrupted`. Stop its processes; its log is Redis's from now on."""
        run = self.runs.get(run_id)
        if run is None or run_id in self._fenced or self.owner.get(run_id) != self.rid:
            return
        self._fenced.add(run_id)
        self.lease.drop(run_id)
        log.warning("run %s (%s): replica %s took it over while this one was stalled past "
                    "its lease; its processes are stopped here", run_id, run.experiment, owner)
        self.owner[run_id] = owner
        if run.timer is not None:
            run.timer.cancel()
        live = run.status not in FINAL
        run.stop_reason = run.stop_reason or "interrupted"
        # Counted again from the run's log as Redis has it, its end (and status) included.
        run.processes_started = run.processes_live = run.events = 0
        if not live:  # it ended here, but its run.end was refused: Redis's says how it ended
            run.status = "running"
            run.finished = asyncio.Event()
        self.redis_hub.lost(run_id)
        if live and run.pid is not None:
            self._tasks.append(asyncio.ensure_future(self._stop_fenced(run_id, run.pid, run)))

    async def _stop_fenced(self, run_id: str, pgid: int, run: Run) -> None:
        how = await self._blocking(procgroup.stop_group, pgid, self.stop_grace,
                                   frozenset({pgid}), run.reaped)
        log.info("run %s: taken over (pgid %s): %s", run_id, pgid, how)

    def _on_remote(self, run_id: str, events: Sequence[Event]) -> None:
        """Another's run's events, read here: its counters and its end follow them."""
        run = self.runs.get(run_id)
        if run is None or self.owner.get(run_id) == self.rid or run.finished.is_set():
            return  # (finished: its record is final; a copy read again counts nothing twice)
        for event in events:
            apply_event(run, event.kind, event)
        run.events += len(events)
        if run.status in FINAL and not run.finished.is_set():
            run.finished.set()

    # --- leases ---

    def _load(self) -> dict[str, Any]:
        mine = [r for r in self.runs.values()
                if r.status not in FINAL and self.owner.get(r.id) == self.rid]
        cpu = os.times()
        return {"id": self.rid, "url": self.url, "pid": os.getpid(), "at": time.time(),
                "runs_live": len(mine), "processes_live": sum(r.processes_live for r in mine),
                "streams": self.streams.live,
                "cpu_seconds": round(cpu.user + cpu.system, 2)}

    async def _tick(self) -> None:
        mine = [r.id for r in self.runs.values()
                if r.status not in FINAL and self.owner.get(r.id) == self.rid]
        sent_at = time.monotonic()
        try:
            self.replicas, taken = await asyncio.wrap_future(
                self.redis_hub.link.submit(self.registry.renew(self._load(), mine)))
        except self.redis_hub.link.errors as e:
            log.warning("redis: cannot renew the lease (%s)", e)
            return
        self.lease.renewed(sent_at)
        for run_id, owner in taken.items():  # a quiet run: no write of ours was refused yet
            self._on_fenced(run_id, owner)
        for run_id, events in self.lease.release():  # ours still: shown now
            self._on_events(run_id, events)
        self.redis_hub.let_go()
        with contextlib.suppress(*self.redis_hub.link.errors):
            self.redis_memory = await asyncio.wrap_future(
                self.redis_hub.link.submit(self.registry.used_memory()))
        for run in list(self.runs.values()):
            owner = self.owner.get(run.id, self.rid)
            if (run.status not in FINAL and owner not in self.replicas
                    and owner != self.rid and run.id not in self._claimed):
                self._claimed.add(run.id)
                self._tasks.append(asyncio.ensure_future(self._take_over(run)))

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await self._tick()

    async def _take_over(self, run: Run) -> None:
        """End a dead owner's live run `interrupted` (one replica does, by claim)."""
        link = self.redis_hub.link
        dead = self.owner.get(run.id, "")
        if not await asyncio.wrap_future(link.submit(self.registry.claim(run.id, dead))):
            return  # another replica ends it (or its owner woke): we read that in its log
        runlog = await self.redis_hub.adopt(run.id)
        self.owner[run.id] = self.rid
        if runlog.ended:  # its run.end was written, its last record was not
            for event in runlog.lifecycle():
                if event["kind"] == "run.end":
                    apply_event(run, "run.end", event)
            self._save(run)
            run.finished.set()
            return
        run.processes_started = run.processes_live = 0
        ledger = Ledger()
        for event in runlog.lifecycle():
            apply_event(run, event["kind"], event)
            ledger.note(event["kind"], event, 0)
        run.events = len(runlog)
        log.warning("run %s (%s): its replica %s is gone; it ends interrupted", run.id,
                    run.experiment, dead)
        last_t = runlog.last_t()
        self.relay.resume(run.id, len(runlog), time.monotonic_ns() - int(last_t * 1e9),
                          ledger)
        self.relay.end(run.id, "interrupted", None)

    def history_status(self) -> dict[str, Any]:
        """For /api/status's `history`: where runs are kept with --redis (no password),
        how many run streams, their events and the memory Redis uses (as of the last tick)."""
        hub = self.redis_hub
        return {"redis": hub.link.shown_url, "namespace": hub.ns, "streams": len(self.runs),
                "events": sum(run.events for run in self.runs.values()),
                "used_memory": self.redis_memory,
                "unwritten_events": hub.put_events - hub.written_events, "error": hub.error}

    def cluster_status(self) -> dict[str, Any]:
        """For /api/status: this replica, every live one with its load, and Redis."""
        return {"replica": self.rid, "replicas": list(self.replicas.values()),
                **self.redis_hub.status()}
