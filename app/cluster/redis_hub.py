"""The hub on Redis Streams: every run's log and record shared by all replicas.

Runs in the server: logs on the event loop, all Redis I/O on an asyncio loop of its own in
one thread (app.cluster.redis_link), so that neither encoding commands nor waiting on Redis ever
holds up the server's loop. The third implementation of app.streams.hub's log interface
(tests/test_log_contract.py), and the run registry app.cluster.cluster_runs reads.

    owner:   append (loop) ─► the log in memory ─► writer queue ─► pipelined XADD
             (one entry per event, id "SEQ-0", fields k=kind, j=the event's JSON bytes)
    others:  one reader task per run per replica: XRANGE after its cursor to catch up,
             then XREAD BLOCK ─► the log in memory (on the loop) ─► that replica's streams

Entry ids are the run's seqs, so a cursor (`Last-Event-ID`) means the same on every
replica, and the bytes read back are the bytes the relay stamped: any replica's stream of
a run is byte-identical to the owner's. A writer that loses Redis retries the same batch
until it is written (an XADD of an id already there is refused, which is what makes the
retry safe), and a reader resumes from its cursor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from procscope.cluster.redis_fence import APPEND, SAVE, fenced_by
from procscope.cluster.redis_held import HeldLogs
from procscope.cluster.redis_lease import Lease
from procscope.cluster.redis_link import RedisLink
from procscope.history.log_writes import Append, Barrier, Forget, LogWrite, OpenLog, SaveRecord
from procscope.pipe.events import DECODED, Event, Format, frame_json, frame_kind
from procscope.streams.hub import READ_BYTES, FrameLog

log = logging.getLogger("procscope.redis")

CHUNK = 1000  # entries per XRANGE / XREAD, per pipelined write at most 4x this
BLOCK_MS = 1000  # an XREAD BLOCK returns this often at the latest (to see a forget)


class RedisLog(FrameLog):
    """A RunLog kept in this replica's memory: written through to Redis by its owner,
    read from Redis by one reader task everywhere else."""

    def __init__(self, hub: RedisHub, run_id: str, owned: bool, known: int = 0) -> None:
        super().__init__()
        self._hub = hub
        self._run = run_id
        self.owned = owned
        self._known = known  # the record's event count: a remote log not yet read is that long

    def __len__(self) -> int:
        return max(len(self._frames), self._known)

    def held(self) -> int:
        """The events this replica has of the run (a remote one's reader may be behind)."""
        return len(self._frames)

    def append(self, events: Sequence[Event]) -> None:
        if self.forgotten or not events:
            return
        self._hold(events)
        self._hub._write(Append(self._run, list(events)))

    def _unsure(self) -> bool:
        """Ours, and our lease may have lapsed (app.cluster.redis_lease): show nothing until the
        next renewal says the run is still ours."""
        lease = self._hub.lease
        return self.owned and lease is not None and lease.lapsed()

    def read(self, after: int, fmt: Format, max_bytes: int = READ_BYTES,
             upto: int | None = None) -> tuple[bytes, int]:
        if self.forgotten or self._unsure():
            return b"", after
        return super().read(after, fmt, max_bytes, upto)

    async def wait(self, cursor: int) -> None:
        if self._unsure() and not self.forgotten:
            assert self._hub.lease is not None
            await self._hub.lease.renewal_or(self._grew)  # or a poke: the reader looks again
            return
        if not (self.forgotten or cursor < self.held() or self._ended):
            await self._grew.wait()  # (len(self) may be the record's: not what is here)

    def lifecycle(self) -> list[dict[str, Any]]:
        """The lifecycle events read so far, decoded (what a Ledger needs)."""
        frames = zip(self._frames, self._data_at, strict=True)
        return [json.loads(frame_json(f, at)) for f, at in frames if frame_kind(f) in DECODED]

    def last_t(self) -> float:
        if not self._frames:
            return 0.0
        return float(json.loads(frame_json(self._frames[-1], self._data_at[-1]))["t"])


class RedisHub:
    """A Hub of RedisLogs, and the registry of runs (records, owners, replicas)."""

    def __init__(self, url: str, namespace: str = "procscope", pool_size: int = 32) -> None:
        """Connect (blocking: call before serving); RedisUnreachable says why not."""
        self.url = url
        self.ns = namespace
        self.link = RedisLink(url, pool_size)
        self.link.start()  # RedisUnreachable if there is no answer to PING
        # This replica's id: the owner of the runs it starts (app.cluster.redis_fence), its lease.
        self.rid = f"{uuid.uuid4().hex[:8]}-{os.getpid()}"
        self._append_script = self.link.redis.register_script(APPEND)
        self._save_script = self.link.redis.register_script(SAVE)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._logs: HeldLogs[RedisLog] = HeldLogs()  # live runs, and finished ones a while
        self.records: dict[str, dict[str, Any]] = {}  # run -> {"record", "owner"}, mirrored
        self._queue: asyncio.Queue[LogWrite | None] = self.link.call(
            self._make_queue())
        self._writer: concurrent.futures.Future[None] | None = self.link.spawn(
            self._write_loop())
        self.put_events = 0
        self.written_events = 0
        self.error: str | None = None
        # Told, on the loop, each batch a reader brings in (app.cluster.cluster_runs counts them).
        self.on_remote: Callable[[str, Sequence[Event]], None] = lambda run, events: None
        # Told, on the loop, of each run whose write Redis refused because another replica
        # owns it now (we stalled past our lease and it was taken over): (run, new owner).
        self.on_fenced: Callable[[str, str], None] = lambda run, owner: None
        self.lease: Lease | None = None  # app.cluster.cluster_runs': while lapsed, owned logs wait

    def key(self, *parts: str) -> str:
        return ":".join((self.ns, *parts))

    # --- the Hub ---

    def open(self, run_id: str) -> RedisLog:
        self._note_loop()
        log = RedisLog(self, run_id, owned=True)
        self._logs.put(run_id, log)
        return log

    def get(self, run_id: str) -> RedisLog | None:
        log = self._logs.get(run_id)
        if log is None and run_id in self.records:
            log = self.follow(run_id)
        return log

    def follow(self, run_id: str) -> RedisLog:
        """This replica's log of another's run: read from Redis by one task, from seq 1."""
        self._note_loop()
        known = int(self.records.get(run_id, {}).get("record", {}).get("events") or 0)
        log = RedisLog(self, run_id, owned=False, known=known)
        self._logs.put(run_id, log)
        self.link.spawn(self._read_loop(log))
        return log

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        log = self._logs.get(run_id)
        if log is not None:
            log.append(events)

    def forget(self, run_id: str) -> None:
        """Drop a run's log, events and record: here now, in Redis and elsewhere next."""
        self.dropped(run_id)
        self._write(Forget(run_id))

    def lost(self, run_id: str) -> RedisLog:
        """Our run is another replica's now (app.cluster.redis_fence): our copy is dropped (its
        streams here end; a reconnect reads Redis's), and the run is read from Redis from
        seq 1, like any other replica's run."""
        old = self._logs.pop(run_id)
        if old is not None:
            old.forget()
        return self.follow(run_id)

    def dropped(self, run_id: str) -> None:
        """Another replica forgot the run: drop it here too."""
        self.records.pop(run_id, None)
        log = self._logs.pop(run_id)
        if log is not None:
            log.forget()

    # --- the registry ---

    def save_run(self, record: dict[str, Any], owner: str) -> None:
        entry = {"record": record, "owner": owner}
        self.records[record["id"]] = entry
        self._write(SaveRecord(record["id"], json.dumps(entry)))

    async def written(self) -> None:
        """Return once everything given so far is in Redis."""
        self._note_loop()
        assert self._loop is not None
        done = self._loop.create_future()
        self._write(Barrier(done))
        await done

    async def adopt(self, run_id: str) -> RedisLog:
        """Take over another's run (its owner is gone): read all of it, then own it."""
        log = self.get(run_id)
        if log is None:  # (not `or`: an empty log is falsy)
            log = self.follow(run_id)
        log.owned = True  # its reader stops at its next look
        rest = await asyncio.wrap_future(self.link.submit(self._range(run_id, log.held())))
        log._hold([event for event in rest if event.seq > log.held()])
        return log

    def let_go(self) -> None:
        """Drop the copies of finished runs nobody asked for lately (app.cluster.redis_held); ours
        only once everything given to the writer is written."""
        unwritten = self.put_events != self.written_events
        self._logs.let_go({log._run for log in self._logs if log.owned} if unwritten else None)

    def status(self) -> dict[str, Any]:
        return {"redis": self.link.shown_url, "namespace": self.ns,
                "unwritten_events": self.put_events - self.written_events,
                "error": self.error,
                # Runs whose logs this replica has in memory (live, asked for lately, or
                # still read by a stream), and their events.
                "held_runs": len(self._logs),
                "held_events": sum(log.held() for log in self._logs)}

    def close(self) -> None:
        """Write what is queued (for a few seconds at most), stop the thread."""
        if self._writer is not None:
            self.link.call_soon(self._queue.put_nowait, None)
            try:
                self._writer.result(timeout=5)
            except Exception as e:  # noqa: BLE001 - a stop must go on
                log.warning("redis: stopped with events not written (%s)", e)
            self._writer = None
        self.link.stop()

    # --- on the loop ---

    def _note_loop(self) -> None:
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()

    def _write(self, op: LogWrite) -> None:
        if isinstance(op, Append):
            self.put_events += len(op.events)
        self.link.call_soon(self._queue.put_nowait, op)

    def _arrived(self, log: RedisLog, events: list[Event]) -> None:
        if log.forgotten or log.owned:
            return
        fresh = [event for event in events if event.seq > log.held()]
        if fresh:
            log._hold(fresh)
            self.on_remote(log._run, fresh)

    def _on_written(self, events: int, barriers: list[asyncio.Future[None]]) -> None:
        self.written_events += events
        for done in barriers:
            if not done.done():
                done.set_result(None)

    def _tell(self, fn: Callable[..., None], *args: Any) -> None:
        """From the Redis thread: run fn(*args) on the server's loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(fn, *args)

    # --- in the Redis thread ---

    @staticmethod
    async def _make_queue() -> asyncio.Queue[LogWrite | None]:
        return asyncio.Queue()

    async def _write_loop(self) -> None:
        """Take everything queued, write it in one pipeline, again until it is written."""
        stop = False
        while not stop:
            ops = [await self._queue.get()]
            while len(ops) < 4 * CHUNK and not self._queue.empty():
                ops.append(self._queue.get_nowait())
            stop = None in ops
            batch = [op for op in ops if op is not None]
            while True:
                try:
                    await self._write_batch(batch)
                    break
                except self.link.errors as e:
                    if self.error is None:
                        log.error("redis %s: cannot write (%s); retrying, the events wait "
                                  "in memory", self.link.shown_url, e)
                    self.error = str(e)
                    if stop:
                        raise
                    await asyncio.sleep(0.5)
            if self.error is not None:
                log.warning("redis %s: writing again", self.link.shown_url)
                self.error = None
            events = sum(len(op.events) for op in batch if isinstance(op, Append))
            self._tell(self._on_written, events,
                       [op.token for op in batch if isinstance(op, Barrier)])

    async def _write_batch(self, batch: list[LogWrite]) -> None:
        """One pipeline: each run's events and records through the fencing scripts
        (app.cluster.redis_fence: written only while the run is ours), forgets as they are."""
        pipe = self.link.redis.pipeline(transaction=False)
        # Loaded if need be (after a Redis restart); typed as sync Scripts in redis 8.1.
        pipe.scripts.update((self._append_script, self._save_script))  # type: ignore[arg-type]
        fenceable: list[str | None] = []  # per command: the run a fenced answer is about
        for op in batch:
            match op:
                case Append(run, events):
                    args: list[Any] = [self.rid]
                    for event in events:
                        args += [f"{event.seq}-0", event.kind, event.json]
                    pipe.evalsha(self._append_script.sha, 2, self.key("owner", run),
                                 self.key("log", run), *args)
                    fenceable.append(run)
                case SaveRecord(run, record_json):
                    pipe.evalsha(self._save_script.sha, 3, self.key("owner", run),
                                 self.key("runs"), self.key("news"), self.rid, run, record_json)
                    fenceable.append(run)
                case Forget(run):
                    pipe.delete(self.key("log", run), self.key("owner", run))
                    pipe.hdel(self.key("runs"), run)
                    pipe.publish(self.key("news"), json.dumps({"forget": run}))
                    fenceable += [None, None, None]
                case OpenLog() | Barrier():
                    pass  # a Redis stream exists once written; barriers are answered after
        if len(pipe) == 0:
            return
        fenced: dict[str, str] = {}
        for run_id, result in zip(fenceable, await pipe.execute(raise_on_error=False),
                                  strict=True):
            if isinstance(result, Exception):  # a bug, not a lost connection
                log.error("redis: a write was refused: %s", result)
            elif run_id is not None and (owner := fenced_by(result)) is not None:
                fenced[run_id] = owner
        for run_id, owner in fenced.items():
            log.warning("redis: run %s is owned by %s now: our write was refused", run_id,
                        owner)
            self._tell(self.on_fenced, run_id, owner)

    async def _range(self, run_id: str, after: int) -> list[Event]:
        out: list[Event] = []
        stream = self.key("log", run_id)
        while True:
            entries = await _xrange(self.link, stream, after)
            out += [_event(entry) for entry in entries]
            if len(entries) < CHUNK:
                return out
            after = out[-1].seq

    async def _read_loop(self, runlog: RedisLog) -> None:
        """One run's reader on this replica: catch up with XRANGE, then XREAD BLOCK, until
        run.end, a forget, an adoption or the stop."""
        stream = self.key("log", runlog._run)
        cursor = 0
        caught_up = False
        while not (runlog.forgotten or runlog.owned):
            try:
                if not caught_up:
                    entries = await _xrange(self.link, stream, cursor)
                    caught_up = len(entries) < CHUNK
                else:
                    entries = await _xread(self.link, stream, cursor)
            except self.link.errors as e:
                log.warning("redis: reading run %s after %d: %s; retrying", runlog._run,
                            cursor, e)
                await asyncio.sleep(0.5)
                caught_up = False
                continue
            if entries:
                events = [_event(entry) for entry in entries]
                cursor = events[-1].seq
                self._tell(self._arrived, runlog, events)
                if events[-1].kind == "run.end":
                    return


Entry = tuple[bytes, dict[bytes, bytes]]


async def _xrange(link: RedisLink, stream: str, after: int) -> list[Entry]:
    """The entries after seq `after` (exclusive), CHUNK at most."""
    entries: Any = await link.redis.xrange(stream, min=f"({after}-0", count=CHUNK)
    return list(entries or [])


async def _xread(link: RedisLink, stream: str, after: int) -> list[Entry]:
    """The entries after seq `after`, waiting up to BLOCK_MS for the first."""
    got: Any = await link.redis.xread({stream: f"{after}-0"}, count=CHUNK, block=BLOCK_MS)
    if not got:
        return []
    if isinstance(got, dict):  # RESP3
        return list(next(iter(got.values()))[0])
    return list(got[0][1])


def _event(entry: Entry) -> Event:
    entry_id, fields = entry
    return Event(int(entry_id.split(b"-", 1)[0]), fields[b"k"].decode(), fields[b"j"])
