"""What a log's writer thread is given: one typed work item per change to the history.

The history writer (app.history.history_writer: SQLite) and the Redis writer
(app.cluster.redis_hub) take the same items, so the two durable logs are written the same
way: a batch is everything that was queued while the last one was being written, in the
order it was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from procscope.pipe.events import Event


@dataclass(frozen=True, slots=True)
class OpenLog:
    """A new run's log, empty."""

    run: str


@dataclass(frozen=True, slots=True)
class Append:
    """Stamped events of one run, in seq order."""

    run: str
    events: Sequence[Event]


@dataclass(frozen=True, slots=True)
class SaveRecord:
    """A run's record (its JSON, as the writer stores it)."""

    run: str
    record_json: str


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop a run: its log, its events, its record."""

    run: str


@dataclass(frozen=True, slots=True)
class Barrier:
    """`token` is handed back once everything given before it is written."""

    token: Any


LogWrite = OpenLog | Append | SaveRecord | Forget | Barrier
