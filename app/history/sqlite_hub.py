"""The hub on SQLite: every run's log and record in a file that outlives the server.

Runs in the server: logs on the event loop, the writing in app.history.history_writer's thread,
reads ahead for streams in a reader thread. The second implementation of app.streams.hub's log
interface (tests/test_log_contract.py holds it to the same tests as the in-memory one),
and the run manager's RunStore.

    append (loop) ─► the log's tail, in memory ─► writer queue ─► commit ─► written(seq)
                                                                   (loop) ─► tail trimmed
    read after N (loop) ─► N in the tail: from memory
                           N on disk:     an indexed range read, (run, seq) > (run, N),
                                          usually fetched already by wait() off the loop

A log keeps in memory only what the writer has not yet said is on disk: an event is
dropped from memory only after its commit, so a reader never misses one, and the server's
memory does not grow with its history. Events are stored as the relay stamped them (seq,
kind, JSON): the SSE frame and the NDJSON line read back are the same bytes. What is read
back is framed once per fetch and kept for every reader at that cursor (AHEAD cursors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from procscope.history import history_db
from procscope.history.history_writer import HistoryWriter, Written
from procscope.pipe.events import DECODED, Event, Format
from procscope.streams.hub import READ_BYTES, FrameLog, LogsByRun

Rows = list[tuple[int, str, bytes]]
AHEAD = 16  # chunks read ahead per log at once, at most (one per reader at a cursor)


class SqliteLog(FrameLog):
    """A RunLog whose events are on disk, but for the tail not yet written (in memory)."""

    def __init__(self, hub: SqliteHub, run_id: str, last: int = 0, ended: bool = False) -> None:
        super().__init__(first=last + 1, ended=ended)  # every seq up to `last` is on disk
        self._hub = hub
        self._run = run_id
        # cursor -> the events after it, read from disk (by wait(), off the loop) and framed
        # once for every reader at that cursor; AHEAD cursors at most.
        self._ahead: dict[int, list[Event]] = {}

    def append(self, events: Sequence[Event]) -> None:
        if self.forgotten or not events:
            return
        self._hub._note_loop()
        self._hold(events)
        self._hub.writer.events(self._run, events)

    def read(self, after: int, fmt: Format, max_bytes: int = READ_BYTES,
             upto: int | None = None) -> tuple[bytes, int]:
        if after >= self._first - 1:
            return super().read(after, fmt, max_bytes, upto)
        events = self._ahead.get(after)
        if events is None:
            events = self._framed(after, self._hub.rows(self._run, after, self._first - 1,
                                                         max_bytes))
        if not events and not self.forgotten:
            # On disk by the writer's word, yet not there: never spin on it.
            raise RuntimeError(f"run {self._run}: events {after + 1}-{self._first - 1} "
                               "are missing from the history")
        end, size, out = after, 0, []
        for event in events:
            if size >= max_bytes or (upto is not None and event.seq > upto):
                break
            out.append(event.frame if fmt == "sse" else event.ndjson)
            size += len(event.frame)
            end = event.seq
        return b"".join(out), end

    async def wait(self, cursor: int) -> None:
        if self.forgotten:
            return
        if cursor < self._first - 1:
            # There is something after the cursor, on disk: fetch it off the loop now, so
            # that read() finds it in memory (a stream always waits before it reads).
            if cursor not in self._ahead:
                rows = await self._hub.rows_async(self._run, cursor, self._first - 1)
                self._framed(cursor, rows)
            return
        await super().wait(cursor)

    def _framed(self, cursor: int, rows: Rows) -> list[Event]:
        """The rows after `cursor` as events, framed once, kept for the next reader there."""
        events = [Event(seq, kind, body) for seq, kind, body in rows]
        if len(self._ahead) >= AHEAD:
            self._ahead.pop(next(iter(self._ahead)))
        self._ahead[cursor] = events
        return events

    def _written(self, seq: int) -> None:
        """The writer says every event up to `seq` is on disk: drop them from memory."""
        self._let_go(seq)


class SqliteHub(LogsByRun[SqliteLog]):
    """A Hub (and RunStore) on one SQLite file in WAL mode, written by one thread."""

    def __init__(self, path: str) -> None:
        """Check or create the file (blocking: call before serving); HistoryError if it is
        not ours, is damaged, or another server holds it."""
        history_db.prepare(path)
        self.path = path
        self._lock_fd = history_db.lock(path)
        self._conns: dict[int, sqlite3.Connection] = {}
        self._conns_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        conn = self._conn()
        super().__init__()
        self._logs = {
            run: SqliteLog(self, run, last, bool(ended))
            for run, last, ended in conn.execute("SELECT run, last_seq, ended FROM logs")}
        self.size = self._size(conn)
        self.on_size: list[Callable[[int], None]] = []  # told the size after each commit
        self._forgetting = 0  # forgets queued and not yet written
        self.writer = HistoryWriter(path, self._written_threadsafe)
        self.writer.start()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="procscope-history-read")
        self._reader.submit(self._conn).result()  # started now: the thread count holds still

    # --- the Hub ---

    def open(self, run_id: str) -> SqliteLog:
        self._note_loop()
        log = self._logs[run_id] = SqliteLog(self, run_id)
        self.writer.open(run_id)
        return log

    def forget(self, run_id: str) -> None:
        """Drop a run's log, events and record, from memory now and from the file next."""
        log = self._logs.pop(run_id, None)
        if log is not None:
            log.forget()
        self._forgetting += 1
        self.writer.forget(run_id)

    # --- the RunStore ---

    def load_runs(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT record FROM runs").fetchall()
        records = [json.loads(record) for record, in rows]
        return sorted(records, key=lambda r: int(r["id"]))

    def next_run_id(self) -> int:
        conn = self._conn()
        (stored,) = conn.execute("SELECT coalesce(max(value), 1) FROM meta "
                                 "WHERE key = 'next_run_id'").fetchone()
        ids = [int(r) for r, in conn.execute("SELECT id FROM runs") if r.isdigit()]
        return int(max([stored, *(i + 1 for i in ids)]))

    def run_ids(self) -> list[str]:
        """Runs that have a log here."""
        return list(self._logs)

    def save_run(self, record: dict[str, Any]) -> None:
        self.writer.run_record(record["id"], json.dumps(record))

    def lifecycle(self, run_id: str) -> list[dict[str, Any]]:
        """A run's lifecycle events (the kinds the relay decodes), decoded, in seq order:
        what a Ledger needs to end a run that a dead server left live."""
        marks = ",".join("?" * len(DECODED))
        rows = self._conn().execute(
            f"SELECT body FROM events WHERE run = ? AND kind IN ({marks}) ORDER BY seq",
            (run_id, *sorted(DECODED))).fetchall()
        return [json.loads(body) for body, in rows]

    def last_t(self, run_id: str) -> float:
        row = self._conn().execute("SELECT body FROM events WHERE run = ? ORDER BY seq DESC "
                                   "LIMIT 1", (run_id,)).fetchone()
        return float(json.loads(row[0])["t"]) if row else 0.0

    async def written(self) -> None:
        """Return once everything given so far is on disk."""
        self._note_loop()
        done = asyncio.get_running_loop().create_future()
        self.writer.barrier(done)
        await done

    def forgetting(self) -> bool:
        """A forget is queued that the writer has not done: the size is not yet true."""
        return self._forgetting > 0

    def status(self) -> dict[str, Any]:
        return {"db": self.path, "bytes": self.size,
                "unwritten_events": self.writer.put_events - self.writer.written_events,
                "error": self.writer.error}

    def close(self) -> None:
        """Write what is queued, stop the threads, close the file (and its lock)."""
        self.writer.stop()
        self._reader.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._conns.values():
                history_db.close_quietly(conn)
            self._conns.clear()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # --- reading ---

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (the loop's, or the reader thread's)."""
        key = threading.get_ident()
        conn = self._conns.get(key)
        if conn is None:
            conn = history_db.connect(self.path, readonly=True)
            with self._conns_lock:
                self._conns[key] = conn
        return conn

    def rows(self, run_id: str, after: int, upto: int, max_bytes: int = READ_BYTES) -> Rows:
        """(seq, kind, body) of the events in (after, upto], about max_bytes of them."""
        conn = self._conn()
        out: Rows = []
        size = 0
        while size < max_bytes and after < upto:
            chunk: Rows = conn.execute(
                "SELECT seq, kind, body FROM events WHERE run = ? AND seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT 256", (run_id, after, upto)).fetchall()
            if not chunk:
                break
            for row in chunk:
                out.append(row)
                size += len(row[2]) + 32
                if size >= max_bytes:
                    break
            after = out[-1][0]
        return out

    async def rows_async(self, run_id: str, after: int, upto: int) -> Rows:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self.rows, run_id, after, upto)

    @staticmethod
    def _size(conn: sqlite3.Connection) -> int:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])

    # --- news from the writer ---

    def _note_loop(self) -> None:
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()

    def _written_threadsafe(self, written: Written) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(self._on_written, written)

    def _on_written(self, written: Written) -> None:
        for run, seq in written.seqs.items():
            log = self._logs.get(run)
            if log is not None:
                log._written(seq)
        self._forgetting -= len(written.forgotten)
        self.size = written.size
        for done in written.barriers:
            if not done.done():
                done.set_result(None)
        for tell in list(self.on_size):
            tell(self.size)
