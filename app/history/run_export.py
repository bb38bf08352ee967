"""A run as each of its exports: the one place that says how a run's JSON and its events
become the file of each format.

Runs in the server (`GET /api/runs/{id}/trace.json`, `replay.html`) and in
`procscope export --db` (app.history.transfer), which so give the same bytes for the same
run. `procscope export --server` asks a server for the file (`FORMATS[...].path`).

The formats, by the name `procscope export --format` takes:

- `ndjson`: the run's events as the log holds them, one JSON line each, as
  `GET /api/runs/{id}/events.ndjson` streams them; `procscope import` and
  `POST /api/runs/import` take it back.
- `trace`: a Chrome Trace Event file (Perfetto, speedscope), app.history.trace_export.
- `html`: one self-contained `replay.html` that replays the run offline,
  app.history.replay_export.

Standard library only at import (`procscope export --server` needs only the names); the
formats' own modules are imported by `build`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procscope.streams.hub import RunLog


@dataclass(frozen=True)
class ExportFormat:
    """One export: where a server serves it and how its file is named."""

    path: str  # under /api/runs/{id}/
    suffix: str  # of its file's name, procscope-run-{id}{suffix}
    media_type: str


FORMATS = {
    "trace": ExportFormat("trace.json", ".trace.json", "application/json"),
    "html": ExportFormat("replay.html", ".replay.html", "text/html; charset=utf-8"),
    "ndjson": ExportFormat("events.ndjson", ".ndjson", "application/x-ndjson"),
}


def format_of(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"no export format {name!r}; valid: {', '.join(FORMATS)}") from None


def file_name(run_id: str, fmt: str) -> str:
    """The export's file name: the server's Content-Disposition, `procscope export`'s default."""
    return f"procscope-run-{run_id}{format_of(fmt).suffix}"


def build(fmt: str, run: dict[str, Any], ndjson: bytes, lang: str | None = None) -> bytes:
    """The export of one run: `run` its JSON (GET /api/runs/{id}), `ndjson` all its events
    (the `ndjson` export itself). `lang`: the language a replay is shown in until its reader's
    browser chooses (the request's on a server; None: app.i18n's default); the other formats
    have no words of the interface. Takes a while for a big run: off the event loop."""
    format_of(fmt)  # an unknown name is refused, naming the valid ones
    if fmt == "ndjson":
        return ndjson
    if fmt == "trace":
        from procscope.history.trace_export import to_trace

        events = [json.loads(line) for line in ndjson.splitlines() if line]
        return json.dumps(to_trace(events, run), ensure_ascii=False,
                          separators=(",", ":")).encode()
    from procscope import i18n
    from procscope.history.replay_export import replay_bytes
    from procscope.live import catalog

    spec = catalog.SPECS.get(run["experiment"])
    lesson = catalog.describe(spec, full=True) if spec is not None else None
    experiments = [catalog.describe(s, full=True) for s in catalog.SPECS.values()]
    return replay_bytes(run, lesson, experiments, ndjson, lang or i18n.DEFAULT)


async def log_ndjson(log: RunLog) -> bytes:
    """Every event of a server's log so far, as NDJSON: read like a stream reads it (what is
    on disk is fetched off the loop by wait()), without waiting for more."""
    chunks = []
    cursor = 0
    while cursor < len(log):
        await log.wait(cursor)
        chunk, cursor = log.read(cursor, "ndjson", 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
