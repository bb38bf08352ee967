"""Bringing an exported run back: its NDJSON (or JSON) checked, and restamped for a new id.

Runs in the server (`POST /api/runs/import`, off the event loop: a big export takes a
while to read) and in `procscope import --db`. An export is the run's log as the streams
carry it (`events.ndjson`, `procscope export --format ndjson`): one event a line, seq 1
to N without a gap, run.start first, run.end last, of an experiment this server knows.

Only the run id changes: each line's bytes are kept as they were but for the
`{"run":"<id>",` in front (the relay writes every event that way, app.pipe.events.stamp), so the
imported run's streams replay the same JSON with the same seqs. A line written some other
way (a script re-serialized the file) is re-encoded with the new id first, as the relay
would write it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from procscope.live.run_record import Run
from procscope.live.said import said
from procscope.pipe.events import Event
from procscope.pipe.framing import to_json
from procscope.pipe.ledger import FINAL

_RUN_PREFIX = re.compile(rb'^\{"run":(?:"(?:[^"\\]|\\.)*"|null),')


class NotAnExport(ValueError):
    """The body is not a run's export; the message says where and why (a 422)."""


@dataclass
class Export:
    """A checked export: what the new run's record takes from it, and its lines."""

    experiment: str
    params: dict[str, Any]
    status: str
    result: Any
    error: str | None
    exitcode: int | None
    dropped: int
    main_pid: int | None
    started_at: str | None
    ended_at: str | None
    lines: list[bytes]
    kinds: list[str]


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds")


def _split(body: bytes, content_type: str) -> list[bytes]:
    """The body's events, one JSON text each."""
    if content_type == "application/json":
        try:
            value = json.loads(body)
        except ValueError as e:
            raise NotAnExport(said("the body is not JSON: %(why)s", why=str(e))) from None
        if isinstance(value, dict) and isinstance(value.get("events"), list):
            value = value["events"]
        if not isinstance(value, list):
            raise NotAnExport(said("a JSON body must be the run's events, as an array"))
        return [to_json(item).encode() for item in value]
    return [line for line in body.split(b"\n") if line.strip()]


def check(body: bytes, content_type: str, known: set[str], max_events: int) -> Export:
    """The export in `body`, checked: NotAnExport says what is wrong with it."""
    lines = _split(body, content_type)
    if not lines:
        raise NotAnExport(said("the body has no events"))
    if len(lines) > max_events:
        raise NotAnExport(said("%(n)s events, more than this server keeps per run "
                               "(--max-events %(max)s)", n=len(lines), max=max_events))
    kinds = []
    run_field: Any = ...
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    main_pid = None
    for i, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except ValueError as e:
            raise NotAnExport(said("event %(i)s is not JSON: %(why)s", i=i, why=str(e))) from None
        if not isinstance(event, dict):
            raise NotAnExport(said("event %(i)s is not a JSON object", i=i))
        kind, seq, t = event.get("kind"), event.get("seq"), event.get("t")
        if not isinstance(kind, str) or not kind:
            raise NotAnExport(said("event %(i)s has no kind: is this a run's events.ndjson?", i=i))
        if i == 1 and kind != "run.start":
            raise NotAnExport(said("the first event is %(kind)s, not run.start", kind=kind))
        if type(seq) is not int or seq != i:
            raise NotAnExport(said("event %(i)s has seq %(seq)s: an export's seqs go 1, 2, 3, "
                                   "... without a gap", i=i, seq=repr(seq)))
        if not isinstance(t, int | float) or isinstance(t, bool):
            raise NotAnExport(said("event %(i)s (%(kind)s) has no time t", i=i, kind=kind))
        if not isinstance(event.get("data", {}), dict):
            raise NotAnExport(said("event %(i)s (%(kind)s): its data is not an object",
                                   i=i, kind=kind))
        if run_field is ... :
            run_field = event.get("run")
        elif event.get("run") != run_field:
            raise NotAnExport(said("event %(i)s is of run %(run)s, the first of %(first)s: an "
                                   "export is one run", i=i, run=repr(event.get("run")),
                                   first=repr(run_field)))
        if i == 1:
            first = event
        elif kind == "run.start":
            raise NotAnExport(said("event %(i)s is a second run.start", i=i))
        if kind == "run.end":
            if i != len(lines):
                raise NotAnExport(said("event %(i)s is run.end, but %(n)s events follow it",
                                       i=i, n=len(lines) - i))
            last = event
        if kind == "proc.start" and main_pid is None and \
                (event.get("data") or {}).get("role") == "main":
            main_pid = event.get("pid")
        kinds.append(kind)
    if not last:
        raise NotAnExport(said("the last event is %(kind)s, not run.end: the run had not "
                               "ended when it was exported", kind=kinds[-1]))
    start = first.get("data") or {}
    experiment = start.get("experiment")
    if experiment not in known:
        raise NotAnExport(said("run.start names the experiment %(experiment)s, which this "
                               "server does not have; valid: %(valid)s",
                               experiment=repr(experiment), valid=", ".join(sorted(known))))
    params = start.get("params")
    if not isinstance(params, dict):
        raise NotAnExport(said("run.start has no params"))
    end = last.get("data") or {}
    status = end.get("status")
    if status not in FINAL:
        raise NotAnExport(said("run.end has the status %(status)s, not a final one "
                               "(%(final)s)", status=repr(status), final=", ".join(sorted(FINAL))))
    t0_wall = start.get("t0_wall")
    started = ended = None
    if isinstance(t0_wall, int | float):
        started, ended = _iso(t0_wall), _iso(t0_wall + float(last["t"]))
    error = end.get("error")
    exitcode = end.get("exitcode")
    dropped = end.get("dropped")
    return Export(experiment=experiment, params=params, status=status,
                  result=end.get("result"), error=error if isinstance(error, str) else None,
                  exitcode=exitcode if type(exitcode) is int else None,
                  dropped=dropped if type(dropped) is int else 0,
                  main_pid=main_pid if type(main_pid) is int else None,
                  started_at=started, ended_at=ended, lines=lines, kinds=kinds)


def new_run(export: Export, run_id: str) -> Run:
    """The imported run's record: what its run.start and run.end say."""
    return Run(id=run_id, experiment=export.experiment, params=export.params,
               status=export.status, started_at=export.started_at, ended_at=export.ended_at,
               result=export.result if isinstance(export.result, dict) else None,
               error=export.error, pid=export.main_pid, exitcode=export.exitcode,
               dropped=export.dropped, processes_started=export.kinds.count("proc.start"),
               events=len(export.lines))


def restamp(export: Export, run_id: str) -> list[Event]:
    """The export's events as the new run's: the same bytes, but for the run id."""
    head = b'{"run":%s,' % to_json(run_id).encode()
    out = []
    for seq, (line, kind) in enumerate(zip(export.lines, export.kinds, strict=True), 1):
        match = _RUN_PREFIX.match(line)
        if match is not None:
            body = head + line[match.end():]
        else:  # written some other way: as the relay writes an event, run first
            event = json.loads(line)
            event.pop("run", None)
            body = to_json({"run": run_id, **event}).encode()
        out.append(Event(seq, kind, body))
    return out
