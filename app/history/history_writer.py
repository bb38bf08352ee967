"""The history writer: one thread that writes everything the history is given, in batches.

Runs in the server, in a thread of its own, modelled like app.pipe.relay on
logging.handlers.QueueListener: a loop on a queue, stopped by a sentinel, joined. The event
loop only puts work on the queue; it never waits on the disk:

    loop: OpenLog / Append / SaveRecord / Forget / Barrier (app.history.log_writes) ─► queue
    writer: takes everything queued ─► one transaction ─► commit ─► on_written(Written)

so a batch is whatever arrived while the last one was being written: one commit per event
when it is quiet, thousands per commit in a flood. `on_written` runs in the writer thread
and must only hand the news over (app.history.sqlite_hub: call_soon_threadsafe).

A batch that cannot be written (disk full, say) is retried every second until it can be or
the server stops, and nothing queued after it is written first: what is not on disk stays
in the logs' memory (they drop events only once told they are written), so nothing is lost
or reordered while the server lives. At a stop the queue is drained first.
"""

from __future__ import annotations

import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from procscope.history import history_db
from procscope.history.log_writes import Append, Barrier, Forget, LogWrite, OpenLog, SaveRecord
from procscope.pipe.events import Event
from procscope.worker_thread import WorkerThread

log = logging.getLogger("procscope.history")

MAX_OPS = 4096  # operations in one transaction, at most (each one a relay batch, say)


# Rows per INSERT statement: sqlite3 releases the GIL once per statement it steps, and
# per row (executemany) that is a GIL hand-over per event, which the relay and the event
# loop then queue for. Measured alone: 430k rows/s with executemany, 590k with these.
ROWS_PER_INSERT = 200


@functools.cache
def _insert(rows: int) -> str:
    return "INSERT INTO events VALUES " + ", ".join(["(?, ?, ?, ?)"] * rows)


@dataclass
class Written:
    """What one commit made durable."""

    seqs: dict[str, int] = field(default_factory=dict)  # run -> its last seq now on disk
    forgotten: list[str] = field(default_factory=list)
    barriers: list[Any] = field(default_factory=list)  # tokens of the Barrier items
    events: int = 0
    size: int = 0  # the database's bytes (its pages, the WAL's included)


class HistoryWriter:
    """The one writer of a history file."""

    def __init__(self, path: str, on_written: Callable[[Written], None]) -> None:
        self.path = path
        self._on_written = on_written
        self._queue: queue.SimpleQueue[LogWrite | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = WorkerThread("procscope-history", self._loop)
        self.error: str | None = None  # the last batch that failed, until one succeeds
        # Each counted by one thread only: their difference is what waits to be written.
        self.put_events = 0
        self.written_events = 0

    # --- called from other threads (the event loop) ---

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, stop on the sentinel, join, clear the handle."""
        self._thread.stop(self._sentinel)

    def _sentinel(self) -> None:
        self._stopping.set()  # a batch that cannot be written is not retried any more
        self._queue.put(None)

    def open(self, run_id: str) -> None:
        self._queue.put(OpenLog(run_id))

    def events(self, run_id: str, events: Sequence[Event]) -> None:
        self.put_events += len(events)
        self._queue.put(Append(run_id, events))

    def run_record(self, run_id: str, record_json: str) -> None:
        self._queue.put(SaveRecord(run_id, record_json))

    def forget(self, run_id: str) -> None:
        self._queue.put(Forget(run_id))

    def barrier(self, token: Any) -> None:
        """`token` comes back in the Written of the commit that has all put before it."""
        self._queue.put(Barrier(token))

    # --- the writer thread ---

    def _loop(self) -> None:
        conn = history_db.connect(self.path, readonly=False)
        try:
            while True:
                ops = [self._queue.get()]
                while len(ops) < MAX_OPS:
                    try:
                        ops.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = None in ops
                if not self._commit(conn, [op for op in ops if op is not None]) or stop:
                    return
        finally:
            history_db.close_quietly(conn)

    def _commit(self, conn: sqlite3.Connection, ops: list[LogWrite]) -> bool:
        """Write one batch; False if the server stopped before it could be written (then
        nothing after it is written either: the file never has a gap)."""
        while True:
            try:
                written = self._write(conn, ops)
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if self.error is None:
                    log.error("history %s: cannot write (%s); retrying every second, the "
                              "events wait in memory", self.path, e)
                self.error = str(e)
                if self._stopping.wait(1.0):
                    lost = self.put_events - self.written_events
                    log.error("history %s: stopping with %d events not written", self.path,
                              lost)
                    return False
                continue
            if self.error is not None:
                log.warning("history %s: writing again", self.path)
                self.error = None
            self.written_events += written.events
            self._on_written(written)
            return True

    def _write(self, conn: sqlite3.Connection, ops: list[LogWrite]) -> Written:
        out = Written()
        ended: set[str] = set()
        conn.execute("BEGIN")
        for op in ops:
            match op:
                case Append(run, events):
                    for i in range(0, len(events), ROWS_PER_INSERT):
                        chunk = events[i:i + ROWS_PER_INSERT]
                        conn.execute(_insert(len(chunk)),
                                     [x for e in chunk for x in (run, e.seq, e.kind, e.json)])
                    out.seqs[run] = events[-1].seq
                    out.events += len(events)
                    if any(e.kind == "run.end" for e in events):
                        ended.add(run)
                case OpenLog(run):
                    conn.execute("INSERT OR REPLACE INTO logs VALUES (?, 0, 0)", (run,))
                case SaveRecord(run, record_json):
                    conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?)", (run, record_json))
                    if run.isdigit():
                        conn.execute("INSERT INTO meta VALUES ('next_run_id', ?) ON CONFLICT "
                                     "DO UPDATE SET value = max(value, excluded.value)",
                                     (int(run) + 1,))
                case Forget(run):
                    for sql in ("DELETE FROM events WHERE run = ?",
                                "DELETE FROM logs WHERE run = ?", "DELETE FROM runs WHERE id = ?"):
                        conn.execute(sql, (run,))
                    out.seqs.pop(run, None)
                    ended.discard(run)
                    out.forgotten.append(run)
                case Barrier(token):
                    out.barriers.append(token)
        for run, seq in out.seqs.items():
            conn.execute("UPDATE logs SET last_seq = ?, ended = max(ended, ?) WHERE run = ?",
                         (seq, run in ended, run))
        conn.execute("COMMIT")
        if out.forgotten:
            # Give the freed pages back. Through executescript: from execute() (even
            # with fetchall()) this pragma frees one page only.
            conn.executescript("PRAGMA incremental_vacuum;")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        out.size = pages * conn.execute("PRAGMA page_size").fetchone()[0]
        return out
