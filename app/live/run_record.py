"""A run as the API shows it, and the record of it the history keeps.

Runs in the server, on its event loop (app.live.runs.RunManager owns every Run).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from typing import Any

from procscope.experiments.words import Outcome
from procscope.live import catalog
from procscope.pipe.ledger import FINAL, signal_name


def now() -> str:
    """The wall clock as the API writes it (ISO 8601, UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Run:
    """One run of one experiment, as the API shows it."""

    id: str
    experiment: str
    params: dict[str, Any]
    status: str = "queued"
    created_at: str = field(default_factory=now)
    started_at: str | None = None
    ended_at: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    error_zh: str | None = None  # a lesson's own words for its failure, in Chinese
    events: int = 0
    processes_started: int = 0
    processes_live: int = 0
    dropped: int = 0
    process: BaseProcess | None = None
    workdir: str = ""
    pid: int | None = None  # the main's, kept: the Process object is closed at the end
    exitcode: int | None = None  # the main's, from run.end
    reaped: list[tuple[int, int]] = field(default_factory=list)  # adopted zombies, by cancel
    stop_reason: str | None = None
    timer: asyncio.TimerHandle | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    # A run of kind "program" (`procscope trace`, through app.trace.program_socket): the
    # program's argv, cwd, command line and source; its main is not the server's child.
    kind: str = "experiment"
    program: dict[str, Any] | None = None
    t0_ns: int = 0
    peer_pid: int | None = None  # the `procscope trace` process that waits for the main
    main_exit: asyncio.Future[int | None] | None = None
    # The class's answers to the question this run closed (app.classroom.predictions), or None.
    prediction: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """What a RunStore keeps of the run: enough for the same to_json() after a restart."""
        return {name: getattr(self, name) for name in RECORD}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Run:
        return cls(**{name: record[name] for name in RECORD if name in record})

    def outcome(self, lang: str) -> Outcome | None:
        """The run's outcome in words: a lesson's (its spec tells it), a program's exit."""
        if self.kind == "program":
            return catalog.program_outcome(self.status, self.exitcode, self.error, lang)
        error = self.error_zh if lang == "zh" and self.error_zh else self.error
        return catalog.outcome(self.experiment, self.status, self.result, error, lang)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "experiment": self.experiment,
            "params": self.params,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "result": self.result,
            "error": self.error,
            "outcome": self.outcome("en"),
            # The same in Chinese, for the page's Chinese interface (app.i18n).
            "outcome_zh": self.outcome("zh"),
            "pid": self.pid,
            "exitcode": self.exitcode,
            "events": self.events,
            "processes": self.processes_started,
            "dropped": self.dropped,
            "program": None if self.program is None else {
                **self.program, "name": program_name(self.program)},
            "prediction": with_truth(self.prediction, self.result),
            "links": {
                "self": f"/api/runs/{self.id}",
                "events": f"/api/runs/{self.id}/events",
                "page": f"/runs/{self.id}",
            },
        }


RECORD = ("id", "experiment", "params", "status", "created_at", "started_at", "ended_at",
          "result", "error", "error_zh", "pid", "exitcode", "events", "processes_started",
          "dropped", "kind", "program", "prediction")


def program_name(program: dict[str, Any]) -> str:
    """What the page calls a traced program: its script's file name, `python -m MODULE`, or
    for `-c CODE` its command line."""
    argv = program.get("argv") or []
    if argv[:1] == ["-m"] and len(argv) > 1:
        return f"python -m {argv[1]}"
    if argv[:1] == ["-c"] or not argv:
        return str(program.get("command") or "python -c")
    return os.path.basename(str(argv[0])) or str(argv[0])


def with_truth(prediction: dict[str, Any] | None, result: Any) -> dict[str, Any] | None:
    """A run's kept answers, and once it has a result, the truth they are set against."""
    if prediction is None:
        return None
    truth = result.get(prediction["answer_from"]) if isinstance(result, dict) else None
    return {**prediction, "truth": truth}


def program_view(run: dict[str, Any]) -> dict[str, Any]:
    """A traced program's run (kind `program`) as the sidebar shows it instead of a lesson's
    form (templates/partials/program.html): what ran, where, and how it ended."""
    program = run["program"] or {}
    code = run["exitcode"]
    ended = run["status"] in FINAL
    seconds = None
    if ended and run["started_at"] and run["ended_at"]:
        seconds = (datetime.fromisoformat(run["ended_at"]) -
                   datetime.fromisoformat(run["started_at"])).total_seconds()
    return {"run": run["id"], "ended": ended,
            "name": program.get("name") or "",
            "command": program.get("command") or "", "argv": repr(program.get("argv") or []),
            "cwd": program.get("cwd") or "", "source": program.get("source") or "",
            "exitcode": code, "signal": signal_name(-code) if code is not None and code < 0
            else None, "seconds": seconds}
