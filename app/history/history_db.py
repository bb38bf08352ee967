"""The history database file: checking that it is ours, creating it, connecting to it.

Runs in the server: `prepare()` at start, before anything is served (it may block), and
`connect()` in each thread of app.history.sqlite_hub that reads or writes (one connection each).

A file procscope did not make is never written to: it is first opened read-only and
checked (SQLite's own header, our `application_id`, our schema version, `quick_check`);
anything else is a `HistoryError` naming the file and what to do, and the file is left as
it was. Only a file that does not exist, or is empty, is created.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

APPLICATION_ID = 0x50534331  # "PSC1" in the file's header: this is procscope's history
SCHEMA_VERSION = 1

# `logs` is the hub's (app.history.sqlite_hub): each run's last seq and whether run.end is in;
# `events` every event's JSON as the relay stamped it (the SSE frame and the NDJSON line
# are rebuilt from seq, kind and these bytes, identically); `runs` the run manager's
# records (app.live.runs.Run.record), `meta` the next run id.
SCHEMA = """
CREATE TABLE logs (run TEXT PRIMARY KEY, last_seq INTEGER NOT NULL,
                   ended INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE events (run TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
                     body BLOB NOT NULL, PRIMARY KEY (run, seq)) WITHOUT ROWID;
CREATE TABLE runs (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


class HistoryError(Exception):
    """The history file cannot be used; the message says which file, why, and what to do."""


def _refuse(path: str, why: str) -> HistoryError:
    return HistoryError(f"{path}: {why}. It was left as it is: move it away, or start with "
                        "another --db PATH (--db :memory: keeps no history)")


def prepare(path: str) -> None:
    """Make sure `path` is a history database of ours: check it, or create it if absent."""
    file = Path(path)
    if file.is_dir():
        raise _refuse(path, "is a directory")
    if file.exists() and file.stat().st_size > 0:
        _check(path)
        return
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Pages freed by forgetting a run go back to the file system (incremental_vacuum
        # after each forget): --max-db-mb is then a cap on the file, not only on its data.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        # One transaction: a file that has the tables also has our id and version.
        conn.executescript(f"BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; "
                           f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
    finally:
        conn.close()


def _check(path: str) -> None:
    # Opening a WAL file, even read-only, makes its -wal and -shm beside it: those that
    # were not there before are removed again if the file is refused.
    companions = [path + suffix for suffix in ("-wal", "-shm")
                  if not os.path.exists(path + suffix)]
    try:
        _check_contents(path)
    except HistoryError:
        for made in companions:
            with contextlib.suppress(OSError):
                os.unlink(made)
        raise


def _check_contents(path: str) -> None:
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            # Every page's structure, not the whole file's contents against its indexes
            # (integrity_check): ~2 s per GB measured here, once at start.
            check = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise _refuse(path, f"is not a procscope history database ({e})") from None
    if app_id != APPLICATION_ID:
        raise _refuse(path, f"is an SQLite database, but not procscope's (application_id "
                      f"{app_id:#x}, procscope's is {APPLICATION_ID:#x})")
    if version != SCHEMA_VERSION:
        raise _refuse(path, f"is a procscope history of schema version {version}; this "
                      f"procscope reads version {SCHEMA_VERSION}")
    if check != ["ok"]:
        raise _refuse(path, "is damaged (SQLite's quick_check: " + "; ".join(check) + ")")


def lock(path: str) -> int:
    """Hold the file for this server alone (flock, released when the fd closes): two
    servers on one history would hand out the same run ids."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise HistoryError(f"{path}: another procscope server is using this history; stop "
                           "it, or start with another --db PATH") from None
    return fd


def connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    """A connection for one thread (closed by whoever keeps the list of them)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # WAL with synchronous NORMAL: a commit is a write() to the WAL, no fsync. It survives
    # the server's death (kill -9 included), not a power cut: the last commits before
    # one may be lost, never the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    else:
        conn.execute("PRAGMA journal_size_limit = 67108864")  # the WAL shrinks back to 64 MB
    return conn


def close_quietly(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.close()
