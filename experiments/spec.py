"""What an experiment declares: its id, its lesson, its params with their bounds, the
tracks it wants drawn and how its outcome reads in words.

Plain dataclasses, no pydantic: every spawned worker of a run re-imports its experiment's
module, and pydantic alone costs ~0.2 s of import per process (app.live.catalog turns these
declarations into pydantic models, on the server side only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procscope.experiments.lesson_words import LessonWords
    from procscope.experiments.words import Lang, Outcome


class LessonFailure(Exception):
    """Raised by a lesson's main to fail the run in the lesson's own words: the failure is
    what the lesson shows (a Pool's lost task), not a bug. The run's `error` is then the
    message alone (and its `error_zh` the same in Chinese, for the page's Chinese
    interface); a traceback would only show procscope's wiring (app.live.runner)."""

    def __init__(self, message: str, message_zh: str = "") -> None:
        super().__init__(message)
        self.message_zh = message_zh


@dataclass(frozen=True)
class Param:
    """One parameter: its default (whose type is the param's type) and its bounds; a
    lesson's description comes from its data file (lesson_words, `[params.NAME] help`)."""

    default: Any
    description: str = ""
    ge: float | None = None  # for numbers, and for each item of a list of numbers
    le: float | None = None
    choices: tuple[str, ...] | None = None  # for strings
    min_items: int | None = None  # for lists
    max_items: int | None = None
    description_zh: str = ""  # the description in Chinese, for the page's Chinese interface


MOMENT_KEYS = frozenset({"kind", "proc", "role", "text", "data", "nth"})
"""What a KeyMoment's start or end may say about its event."""

TRACK_KINDS = ("lock", "queue", "sold")
"""The shared-resource tracks the page can draw above the process lanes, top to bottom:
`lock`, its holder and how many wait (from lock.wait / lock.acquire / lock.release);
`queue`, its depth (from queue.put / queue.get / queue.full / queue.empty); `sold`, the
events of the lesson's `counts` kind (one a unit sold) against a stock."""

MARK_SHAPES = ("tick", "star", "up", "down", "upAlert", "downAlert", "cross", "ring", "diamond")
"""The shapes static/marks.js draws a point event with on its process lane; a kind the page
has no shape for is drawn as a diamond (any `*.error` as a cross)."""

LIBRARY_THREADS = ("QueueFeederThread", "ExecutorManagerThread", "_handle_workers",
                   "_handle_tasks", "_handle_results", "_serve", "process_request_thread",
                   "_feed")
"""The standard library's own helper threads, by the name they report or by their target
(a name that ends `(target)`, as threading names a thread made with a target): a Queue's
feeder, a Pool's worker/task/result handlers, the resource sharer, a ProcessPoolExecutor's
manager, socketserver's per-request threads. The page folds them into their process's lane
(as it does a lesson's `helper_threads`): they are multiprocessing's wiring, not the lesson."""


@dataclass(frozen=True)
class Track:
    """How a lesson wants one of the TRACK_KINDS drawn."""

    always: bool = False  # drawn from the run's first event, even before any of its own
    stock_param: str | None = None  # sold: the param whose value is the stock line
    counts: str | None = None  # sold: the event kind counted, one event a unit sold


@dataclass(frozen=True)
class KeyMoment:
    """A moment of a run worth seeing, from one event to another: when the run ends the
    page zooms to the lesson's moments (all of them) and labels each on the canvas.

    `start` and `end` say which event, as plain dicts matched in the browser
    (static/key_moment.js): `kind` (required); `proc` the process's name (`worker-*` a
    prefix, `!main` any other); `role`; `text` the start of a print's text; `data` fields
    that must be equal; `nth` which of the matching events (1 = the first, -1 = the last).
    `label` is a template: `{ms}` / `{s}` the time between them, `{start.F}` / `{end.F}` a
    field of either event's data (in `label_zh`, its `F_zh` where the event has one),
    `{result.F}` a field of the run's result, `{depth_max}` the queue's deepest point
    between them.
    """

    start: dict[str, Any]
    end: dict[str, Any]
    label: str
    label_zh: str = ""  # the same template in Chinese, for the Chinese interface


@dataclass(frozen=True)
class Prediction:
    """A question the class answers before the run (app.classroom.predictions): a number within
    [ge, le], or one of `choices`; the truth is the result's `answer_from` field. Its words
    come from the lesson's data file (lesson_words, `[question] text`)."""

    answer_from: str
    question: str = ""
    question_zh: str = ""
    choices: tuple[str, ...] | None = None
    ge: float = 0
    le: float = 1000
    unit: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # the run it asks about


@dataclass(frozen=True)
class Experiment:
    """One lesson of the tutorial, as something that runs."""

    id: str
    section: str  # the tutorial's heading
    code: str  # the few lines of tutorial code this runs
    params: dict[str, Param]
    main: Callable[[Any, Any], dict[str, Any]]
    # Every human-language string of the lesson, from its data file NAME.toml (title,
    # summary, lesson, each param's help, the prediction's question): filled in from it.
    words: LessonWords | None = None
    title: str = ""
    summary: str = ""
    lesson: str = ""  # what to watch for, in a teacher's words (English)
    lesson_zh: str = ""  # the tutorial's own words, where it has them
    # A pair of param sets worth running side by side ("Run both", "Compare with ...").
    compare: tuple[dict[str, Any], dict[str, Any]] | None = None
    # Run the pair one after the other, not at once: a CPU-bound lesson's sides would share
    # the same cores and each get half the machine (gil's processes would come out slower
    # than its threads). The page starts the second after the first's run.end.
    compare_sequential: bool = False
    # The tracks drawn above the process lanes (the page draws no other), by TRACK_KINDS.
    tracks: dict[str, Track] = field(default_factory=dict)
    # The run's outcome in words from its result, in the language asked (the run's
    # `outcome` and `outcome_zh`); None when there is nothing to say. Runs in the server,
    # never in the run: it may read any field of the result, or miss one.
    outcome: Callable[[dict[str, Any], Lang], Outcome | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A question for the class before the run ("predict, then run"), or None.
    prediction: Prediction | None = None
    # What the picture must show once the run has ended (the page zooms there).
    key_moments: tuple[KeyMoment, ...] = ()
    # The title and summary in Chinese, for the page's Chinese interface ("": the English).
    title_zh: str = ""
    summary_zh: str = ""
    # How the page draws the lesson's own event kinds on their lanes, by MARK_SHAPES (a
    # kind not named: a diamond, any `*.error` a cross).
    marks: dict[str, str] = field(default_factory=dict)
    # The names of threads the lesson starts as wiring (a watch, not what it shows): folded
    # into their process's lane, as the standard library's LIBRARY_THREADS are.
    helper_threads: tuple[str, ...] = ()
    # multiprocessing's primitives report what they do, as under `procscope trace`
    # (app.pipe.prims: obj.new, lock.*, queue.*, task.*, ...), in every process of the
    # run. Off for a lesson that sends those events by hand, so they are not sent twice.
    instrument_prims: bool = False

    def __post_init__(self) -> None:
        if self.words is not None:
            self._take_words(self.words)
        for moment in self.key_moments:
            for side in (moment.start, moment.end):
                if "kind" not in side or set(side) - MOMENT_KEYS:
                    raise ValueError(f"{self.id}: a key moment's event {side!r} needs a "
                                     f"'kind' and only these keys: "
                                     f"{', '.join(sorted(MOMENT_KEYS))}")
        for kind, shape in self.marks.items():
            if shape not in MARK_SHAPES:
                raise ValueError(f"{self.id}: the mark of {kind!r} is {shape!r}; valid: "
                                 f"{', '.join(MARK_SHAPES)}")
        if self.compare_sequential and self.compare is None:
            raise ValueError(f"{self.id}: compare_sequential without a compare pair")
        for name, track in self.tracks.items():
            if name not in TRACK_KINDS:
                raise ValueError(f"{self.id}: unknown track {name!r}; valid: "
                                 f"{', '.join(TRACK_KINDS)}")
            if (track.counts is None) != (name != "sold"):
                raise ValueError(f"{self.id}: track {name!r} "
                                 + ("needs the event kind it counts (counts=...)"
                                    if name == "sold" else "counts nothing (no counts=)"))
            if track.stock_param is not None and track.stock_param not in self.params:
                raise ValueError(f"{self.id}: track {name!r} reads param "
                                 f"{track.stock_param!r}, which it does not have; valid: "
                                 f"{', '.join(sorted(self.params))}")


    def _take_words(self, words: LessonWords) -> None:
        given = {"title": (self.title, words.title.en), "title_zh": (self.title_zh, words.title.zh),
                 "summary": (self.summary, words.summary.en),
                 "summary_zh": (self.summary_zh, words.summary.zh),
                 "lesson": (self.lesson, words.lesson.en),
                 "lesson_zh": (self.lesson_zh, words.lesson.zh)}
        # Only the file's own (dataclasses.replace passes the filled fields back in).
        for key, (in_spec, from_file) in given.items():
            if in_spec and in_spec != from_file:
                raise ValueError(f"{self.id}: its {key} is in {words.file}, not in its spec")
        if set(words.help) != set(self.params):
            raise ValueError(f"{words.file}: [params.*] names {sorted(words.help)}; the "
                             f"lesson's params are {sorted(self.params)}")
        if (words.question is None) != (self.prediction is None):
            raise ValueError(f"{words.file}: [question] "
                             + ("without a prediction in the spec" if self.prediction is None
                                else "is missing: the spec asks a prediction"))
        # Frozen: the words are set once, here, as the dataclass's own __init__ would.
        fill: dict[str, object] = {
            "title": words.title.en, "title_zh": words.title.zh,
            "summary": words.summary.en, "summary_zh": words.summary.zh,
            "lesson": words.lesson.en, "lesson_zh": words.lesson.zh,
            "params": {name: replace(p, description=words.help[name].en,
                                     description_zh=words.help[name].zh)
                       for name, p in self.params.items()}}
        if self.prediction is not None and words.question is not None:
            fill["prediction"] = replace(self.prediction, question=words.question.en,
                                         question_zh=words.question.zh)
        for name, value in fill.items():
            object.__setattr__(self, name, value)


COMMON_PARAMS: dict[str, Param] = {
    "time_scale": Param(1.0, "Multiplies every sleep of the lesson (0.1 = ten times faster)",
                        ge=0.01, le=10,
                        description_zh="这节课里每次 sleep 的倍数（0.1 = 快十倍）"),
    "start_method": Param("fork", "How the lesson's processes are started",
                          choices=("fork", "forkserver", "spawn"),
                          description_zh="这节课的进程用哪种方式启动"),
}
