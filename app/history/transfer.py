"""`procscope export` and `procscope import`: a run out of the history, and back in.

Runs in the user's terminal. Two ways to reach the history:

- through a server's API (the default: `--server http://127.0.0.1:8000`, `--token`): the
  same files the page's Download links give (`trace.json`, `replay.html`,
  `events.ndjson`), and `POST /api/runs/import`. Works against a running server (which
  holds its history file for itself alone) and one on another machine.
- straight from a history file (`--db PATH`), no server needed: export reads it (even
  while a server runs on it: SQLite's WAL lets a reader in beside the writer); import
  writes into it, and so needs the file to itself (a server on it: use the server).

Standard library only, but for `--db` (which reads the history the way the server does,
and builds the export with the server's own builder, app.history.run_export).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

from procscope.history import run_export


class TransferError(Exception):
    """What went wrong, in words, for stderr (exit code 1)."""


def _request(url: str, token: str | None, data: bytes | None = None,
             content_type: str | None = None) -> bytes:
    headers = {"Accept": "*/*"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, headers=headers,
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("detail", "")
        except ValueError:
            detail = ""
        raise TransferError(f"{url}: {e.code} {e.reason}{': ' if detail else ''}"
                            f"{detail if isinstance(detail, str) else json.dumps(detail)}") \
            from None
    except (urllib.error.URLError, OSError) as e:
        raise TransferError(f"{url}: {getattr(e, 'reason', e)} (is the server running? "
                            "--server URL, or --db PATH for a history file)") from None


def export_from_server(server: str, token: str | None, run_id: str, fmt: str) -> bytes:
    path = run_export.format_of(fmt).path
    return _request(f"{server.rstrip('/')}/api/runs/{run_id}/{path}", token)


def import_to_server(server: str, token: str | None, body: bytes) -> dict[str, Any]:
    answer = _request(f"{server.rstrip('/')}/api/runs/import", token, body,
                      "application/x-ndjson")
    run: dict[str, Any] = json.loads(answer)
    return run


# --- straight from a history file ---

def _read_db(path: str, run_id: str) -> tuple[dict[str, Any], bytes]:
    """The run's JSON and its events' NDJSON, from a history file, read-only."""
    import os
    import sqlite3
    from urllib.parse import quote

    from procscope.live.run_record import Run

    if not os.path.isfile(path):
        raise TransferError(f"{path}: no such history file")
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT record FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise TransferError(f"{path}: no run {run_id!r}")
            rows = conn.execute("SELECT body FROM events WHERE run = ? ORDER BY seq",
                                (run_id,)).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise TransferError(f"{path}: not a procscope history ({e})") from None
    run = Run.from_record(json.loads(row[0])).to_json()
    return run, b"".join(bytes(body) + b"\n" for body, in rows)


def export_from_db(path: str, run_id: str, fmt: str) -> bytes:
    """The export a server would give of the run (a replay in English)."""
    run, ndjson = _read_db(path, run_id)
    return run_export.build(fmt, run, ndjson)


def import_to_db(path: str, body: bytes) -> dict[str, Any]:
    """Write an export into a history file as a new run (the file to ourselves: its lock)."""
    import asyncio

    from procscope.history.history_db import HistoryError
    from procscope.history.run_import import NotAnExport, check, new_run, restamp
    from procscope.history.sqlite_hub import SqliteHub
    from procscope.live import catalog
    from procscope.settings import Settings

    try:
        export = check(body, "application/x-ndjson", set(catalog.SPECS), Settings().max_events)
    except NotAnExport as e:
        raise TransferError(f"not a run's export: {e}") from None
    try:
        hub = SqliteHub(path)
    except HistoryError as e:
        raise TransferError(str(e)) from None

    async def write() -> dict[str, Any]:
        run = new_run(export, str(hub.next_run_id()))
        hub.open(run.id)
        hub.append(run.id, restamp(export, run.id))
        hub.save_run(run.record())
        await hub.written()
        return run.to_json()

    try:
        return asyncio.run(write())
    finally:
        hub.close()


def main_export(args: Any) -> int:
    try:
        if args.db:
            data = export_from_db(args.db, args.run, args.format)
        else:
            data = export_from_server(args.server, args.token, args.run, args.format)
    except TransferError as e:
        print(f"procscope export: {e}", file=sys.stderr)
        return 1
    out = args.output or run_export.file_name(args.run, args.format)
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    with open(out, "wb") as f:
        f.write(data)
    print(f"{out}: {len(data):,} bytes", file=sys.stderr)
    return 0


def main_import(args: Any) -> int:
    try:
        if args.file == "-":
            body = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                body = f.read()
    except OSError as e:
        print(f"procscope import: {e}", file=sys.stderr)
        return 1
    try:
        run = import_to_db(args.db, body) if args.db else \
            import_to_server(args.server, args.token, body)
    except TransferError as e:
        print(f"procscope import: {e}", file=sys.stderr)
        return 1
    print(json.dumps(run) if args.json else
          f"run {run['id']}: {run['experiment']} {run['status']}, {run['events']} events")
    return 0
