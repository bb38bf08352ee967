"""The classroom stream: one small log per server of what every page follows live.

Runs in the server, on its event loop. Its frames (docs/api.md, "The classroom stream"):
`run.created` (a run has started: students' pages switch to it), `prediction.open`,
`prediction.count` (how many have answered, never what), `prediction.closed`. A log like a
run's (app.streams.hub.FrameLog), streamed as a run's is (app.streams.stream.RunStream, its
fanout, its pings), so a page that reconnects with Last-Event-ID misses nothing and a slow
one never holds anyone up.

With --redis the classroom is the cluster's (app.cluster.redis_classroom): the same log, filled
from a Redis stream every replica reads, and the question kept in Redis.

Bounded: the log keeps its last KEEP frames (a reader further behind starts at the oldest
kept; a page only needs what came since it was rendered).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from procscope.classroom.predictions import MAX_ANSWERS, Predictions, QuestionClosed, TooManyAnswers
from procscope.live.run_record import Run
from procscope.live.said import Problem, error_answers, message, said
from procscope.pipe.events import Event
from procscope.streams import stream
from procscope.streams.hub import FrameLog

KEEP = 4096  # frames kept; a page rendered longer ago than that many frames starts later
VOTER_COOKIE = "procscope_voter"


def _with(codes: tuple[int, ...], **why: str) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, for the OpenAPI schema; `why` words ours (e409=...)."""
    out = error_answers(*codes)
    for key, text in why.items():
        out[int(key[1:])] = {"model": Problem, "description": text}
    return out


class NewsLog(FrameLog):
    """A RunLog (app.streams.hub) that never ends and forgets its oldest frames past KEEP."""

    def add(self, kind: str, data: dict[str, Any]) -> None:
        self.add_at(len(self) + 1, kind, compact(data))

    def add_at(self, seq: int, kind: str, data: bytes) -> None:
        """The frame of seq `seq` (data: its JSON); after a gap (a reader that fell behind
        a shared stream's trimming), the log starts again at `seq`."""
        if seq <= len(self):
            return  # had it (a reader that resumed)
        if seq > len(self) + 1:
            self._start_at(seq)
        body = b'{"seq":%d,"kind":%s,"data":%s}' % (seq, compact(kind), data)
        self._hold([Event(seq, kind, body)])
        if len(self._frames) > 2 * KEEP:
            self._let_go(len(self) - KEEP)

    def start_at(self, last: int) -> None:
        """A new log that follows a shared stream whose last seq is `last`."""
        if not self._frames:
            self._start_at(last + 1)

    def append(self, events: Sequence[Event]) -> None:  # the protocol's; add() is ours
        raise NotImplementedError


def compact(value: Any) -> bytes:
    """JSON as every frame is written (no spaces, UTF-8): the same bytes on every replica."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Classroom:
    """The classroom stream and the one question of the server (app.classroom.predictions)."""

    def __init__(self) -> None:
        self.news = NewsLog()
        self.predictions: Predictions = Predictions(self.news.add)

    def run_created(self, run: Run) -> None:
        """RunManager.on_created: an open question about this lesson closes with this run
        (answers are given before anyone sees it), and every page hears of the run."""
        run.prediction = self.predictions.close_for(run.id, run.experiment)
        self.news.add("run.created", run.to_json())


router = APIRouter(prefix="/api", responses=error_answers(400, 401, 403))


def _classroom(request: Request) -> Classroom:
    classroom: Classroom = request.app.state.classroom
    return classroom


@router.get("/classroom/events", summary="The classroom stream: run starts and questions, live",
            responses=error_answers(503), response_class=StreamingResponse)
async def classroom_events(
    request: Request,
    after: Annotated[int | None, Query(ge=0, description="resume after this seq")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> stream.RunStream:
    log = _classroom(request).news
    # Every page holds one of these as long as it is open: a run's stream, of this log.
    return stream.for_request(request, log, stream.cursor(after, last_event_id, len(log)),
                              "sse")


class OpenQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment: str = Field(description="the lesson whose question to ask (its spec's prediction)",
                            max_length=64)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: float | str = Field(description="a number, or one of the question's choices")


@router.get("/prediction", summary="The current (or last) question, without who answered what")
async def get_prediction(request: Request) -> dict[str, Any]:
    return {"question": _classroom(request).predictions.public()}


@router.post("/prediction", status_code=201, summary="Open the lesson's question (one at a time)",
             responses=_with((413, 415), e404="No such lesson, or it has no question",
                             e409="A question is open already: close it first"))
async def open_prediction(request: Request,
                          body: Annotated[OpenQuestion, Body()]) -> dict[str, Any]:
    predictions = _classroom(request).predictions
    try:
        question = await predictions.open(body.experiment)
    except KeyError as e:
        raise HTTPException(404, str(e.args[0])) from None
    except QuestionClosed as e:
        raise HTTPException(409, message(e)) from None
    return {"question": question}


@router.delete("/prediction", summary="Close the open question without a run",
               responses=_with((), e409="No question is open"))
async def close_prediction(request: Request) -> dict[str, Any]:
    predictions = _classroom(request).predictions
    try:
        return {"question": await predictions.close()}
    except QuestionClosed as e:
        raise HTTPException(409, message(e)) from None


@router.post("/prediction/answers", summary="Answer the open question (one answer a browser)",
             responses=_with((413, 415), e409="No question is open",
                             e429="The answers reached their cap"))
async def answer_prediction(request: Request, response: Response,
                            body: Annotated[Answer, Body()]) -> dict[str, Any]:
    predictions = _classroom(request).predictions
    voter = request.cookies.get(VOTER_COOKIE, "")
    if not (len(voter) == 32 and all(c in "0123456789abcdef" for c in voter)):
        voter = predictions.new_voter()
        response.set_cookie(VOTER_COOKIE, voter, httponly=True, samesite="strict", path="/")
    try:
        return await predictions.answer(voter, body.answer)
    except QuestionClosed as e:
        raise HTTPException(409, message(e)) from None
    except TooManyAnswers:
        raise HTTPException(429, said("%(n)s answers are in: the cap", n=MAX_ANSWERS)) from None
    except ValueError as e:  # shaped as FastAPI's own 422: the field and what is wrong
        raise HTTPException(422, [{"type": "value_error", "loc": ["body", "answer"],
                                   "msg": message(e), "input": body.answer}]) from None
