"""Predict, then run: the server's one question, its answers, and the answers kept with a run.

Runs in the server, on its event loop. A lesson's spec may declare a question
(experiments.spec.Prediction: its words, its choices or a number with bounds, the result
field that holds the truth). A token holder opens it; every browser answers once (a random
id in a cookie, no account: a second answer replaces the first); the count goes to every
page through the classroom stream (app.classroom.classroom), never the answers themselves, so nobody
copies the crowd. The next run of that lesson closes the question and keeps the answers in
its record (`prediction` in the run's JSON), where the page shows them beside the truth.

Bounded: one open question per server (per cluster of replicas with --redis), at most
MAX_ANSWERS browsers, answers that are a number within the question's bounds or one of its
choices (short strings the page shows as text, never as HTML).
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from procscope.experiments.spec import Prediction
from procscope.live import catalog
from procscope.live.said import said

MAX_ANSWERS = 2000


class QuestionClosed(Exception):
    """No question is open (to answer or close), or one is open already (to open)."""


class TooManyAnswers(Exception):
    """MAX_ANSWERS browsers have answered."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def describe(prediction: Prediction | None) -> dict[str, Any] | None:
    """A lesson's question as the page and the API show it, or None."""
    if prediction is None:
        return None
    return {"question": prediction.question, "question_zh": prediction.question_zh,
            "choices": list(prediction.choices) if prediction.choices else None,
            "ge": prediction.ge, "le": prediction.le, "unit": prediction.unit,
            "answer_from": prediction.answer_from, "params": dict(prediction.params)}


def lesson_question(experiment: str) -> dict[str, Any] | None:
    spec = catalog.SPECS.get(experiment)
    return describe(spec.prediction) if spec is not None else None


class Predictions:
    """The one question of the server; `tell(kind, data)` puts frames on the classroom stream.

    Its verbs are coroutines: with --redis the question is the cluster's and each verb is a
    Redis step (app.cluster.redis_classroom); here, in this server's memory, they never wait.
    """

    def __init__(self, tell: Callable[[str, dict[str, Any]], None]) -> None:
        self.tell = tell
        self.current: dict[str, Any] | None = None  # open, or the last one closed
        self.answers: dict[str, float | str] = {}
        self.is_open = False
        self._ids = 0

    def new_voter(self) -> str:
        return secrets.token_hex(16)

    def public(self) -> dict[str, Any] | None:
        """The question with its count; its answers only once it is closed."""
        return view(self.current, self.is_open, self.answers)

    async def open(self, experiment: str) -> dict[str, Any]:
        if self.is_open:
            assert self.current is not None
            raise already_open(self.current["id"])
        question = asked(experiment)
        self._ids += 1
        self.current = {"id": self._ids, **question}
        self.answers = {}
        self.is_open = True
        public = self.public()
        assert public is not None
        self.tell("prediction.open", public)
        return public

    async def answer(self, voter: str, value: float | str) -> dict[str, Any]:
        if not self.is_open or self.current is None:
            raise QuestionClosed(said("no question is open"))
        q = self.current
        value = checked(q, value)
        if voter not in self.answers and len(self.answers) >= MAX_ANSWERS:
            raise TooManyAnswers
        self.answers[voter] = value
        self.tell("prediction.count", {"id": q["id"], "total": len(self.answers)})
        return {"id": q["id"], "answer": value, "total": len(self.answers)}

    async def close(self, run_id: str | None = None) -> dict[str, Any]:
        return self._close(run_id)

    def _close(self, run_id: str | None) -> dict[str, Any]:
        if not self.is_open or self.current is None:
            raise QuestionClosed(said("no question is open"))
        self.is_open = False
        self.current = {**self.current, "closed_at": now_iso(), "run": run_id}
        public = self.public()
        assert public is not None
        self.tell("prediction.closed", public)
        return public

    def close_for(self, run_id: str, experiment: str) -> dict[str, Any] | None:
        """A run of the question's lesson starts: the question closes with it, and what the
        run keeps of it is returned (else None). Not a coroutine: a run's start calls it."""
        if not self.is_open or self.current is None or self.current["experiment"] != experiment:
            return None
        return kept(self._close(run_id))


def already_open(question_id: int) -> QuestionClosed:
    return QuestionClosed(said("question %(id)s is open: close it first "
                               "(DELETE /api/prediction) or start its run", id=question_id))


def asked(experiment: str) -> dict[str, Any]:
    """A new question about `experiment`, without its id (KeyError: the lesson has none)."""
    question = lesson_question(experiment)
    if question is None:
        raise KeyError(f"no lesson {experiment!r} with a question; with one: "
                       f"{', '.join(sorted(k for k in catalog.SPECS if lesson_question(k)))}")
    return {"experiment": experiment, **question, "opened_at": now_iso(), "closed_at": None,
            "run": None}


def checked(q: dict[str, Any], value: float | str) -> float | str:
    """An answer to question q as kept (a choice, or a number within its bounds), or
    ValueError saying what is wanted."""
    if q["choices"]:
        if not isinstance(value, str) or value not in q["choices"]:
            raise ValueError(said("one of: %(choices)s", choices=", ".join(q["choices"])))
        return value
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(said("a number is needed")) from None
    if not math.isfinite(value) or not q["ge"] <= value <= q["le"]:
        raise ValueError(said("a number from %(ge)s to %(le)s",
                              ge=f"{q['ge']:g}", le=f"{q['le']:g}"))
    return int(value) if value == int(value) else round(value, 3)


def view(current: dict[str, Any] | None, is_open: bool,
         answers: dict[str, float | str]) -> dict[str, Any] | None:
    """A question as everyone may see it: its count; its answers only once it is closed."""
    if current is None:
        return None
    out = {**current, "open": is_open, "total": len(answers)}
    if not is_open:
        out["answers"] = counts(current, answers)
    return out


def kept(closed: dict[str, Any]) -> dict[str, Any]:
    """What a run keeps of the question its start closed (the public view, closed)."""
    return {k: closed[k] for k in ("id", "question", "question_zh", "choices", "unit",
                                   "answer_from", "total", "answers", "opened_at",
                                   "closed_at")}


def counts(current: dict[str, Any], answers: dict[str, float | str]) -> list[list[Any]]:
    """[[answer, how many], ...]: choices in their order, numbers from small to large."""
    counted = Counter(answers.values())
    if current["choices"]:
        return [[c, counted[c]] for c in current["choices"]]
    return [[v, n] for v, n in sorted(counted.items(), key=lambda kv: float(kv[0]))]
