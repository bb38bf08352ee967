"""What an experiment declares: its id, its lesson, its params with their bounds.

Plain dataclasses, no pydantic: every spawned worker of a run re-imports its experiment's
module, and pydantic alone costs ~0.2 s of import per process (app.catalog turns these
declarations into pydantic models, on the server side only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Param:
    """One parameter: its default (whose type is the param's type) and its bounds."""

    default: Any
    description: str
    ge: float | None = None  # for numbers, and for each item of a list of numbers
    le: float | None = None
    choices: tuple[str, ...] | None = None  # for strings
    min_items: int | None = None  # for lists
    max_items: int | None = None


@dataclass(frozen=True)
class Experiment:
    """One lesson of the tutorial, as something that runs."""

    id: str
    title: str
    summary: str
    section: str  # the tutorial's heading
    lesson: str  # what to watch for, in a teacher's words (English)
    lesson_zh: str  # the tutorial's own words, where it has them
    code: str  # the few lines of tutorial code this runs
    params: dict[str, Param]
    main: Callable[[Any, Any], dict[str, Any]]
    compare: tuple[dict[str, Any], dict[str, Any]] | None = None  # a pair worth running side by side
    extra: dict[str, Any] = field(default_factory=dict)


COMMON_PARAMS: dict[str, Param] = {
    "time_scale": Param(1.0, "Multiplies every sleep of the lesson (0.1 = ten times faster)",
                        ge=0.01, le=10),
    "start_method": Param("fork", "How the lesson's processes are started",
                          choices=("fork", "forkserver", "spawn")),
}
