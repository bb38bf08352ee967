"""The catalogue as the API sees it: each experiment's params as a pydantic model.

Runs in the server. Experiments declare their params as plain `Param`s (see
experiments/spec.py for why); this module turns them into models with the bounds, so that
FastAPI validates requests, names the offending field in a 422, and documents every param
with its bounds in /docs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from procscope import experiments
from procscope.experiments.spec import (
    COMMON_PARAMS,
    LIBRARY_THREADS,
    TRACK_KINDS,
    Experiment,
    Param,
)
from procscope.experiments.words import Outcome
from procscope.pipe.ledger import FINAL, signal_name

log = logging.getLogger("procscope.live.catalog")


def _field(param: Param) -> tuple[Any, Any]:
    default = param.default
    # The description in Chinese, beside the English one in the schema (the page's form).
    zh: dict[str, Any] = ({"json_schema_extra": {"description_zh": param.description_zh}}
                          if param.description_zh else {})
    if param.choices is not None:
        kind: Any = Literal[param.choices]
        return kind, Field(default, description=param.description, **zh)
    if isinstance(default, list):
        item: Any = float
        if param.ge is not None or param.le is not None:
            item = Annotated[float, Field(ge=param.ge, le=param.le)]
        return list[item], Field(list(default), description=param.description,
                                 min_length=param.min_items, max_length=param.max_items, **zh)
    kind = type(default)
    if kind is int:  # integer params get integer bounds in the schema
        return kind, Field(default, description=param.description,
                           ge=None if param.ge is None else int(param.ge),
                           le=None if param.le is None else int(param.le), **zh)
    return kind, Field(default, description=param.description, ge=param.ge, le=param.le, **zh)


def params_model(spec: Experiment) -> type[BaseModel]:
    fields: dict[str, Any] = {name: _field(p)
                              for name, p in {**spec.params, **COMMON_PARAMS}.items()}
    name = "".join(part.title() for part in spec.id.split("_")) + "Params"
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid", title=name), **fields)
    return model


SPECS: dict[str, Experiment] = {eid: experiments.load(eid) for eid in experiments.EXPERIMENTS}
PARAMS: dict[str, type[BaseModel]] = {eid: params_model(s) for eid, s in SPECS.items()}


def _run_request(eid: str) -> type[BaseModel]:
    name = "".join(part.title() for part in eid.split("_")) + "Run"
    # A Literal of a value known only at run time: a type to pydantic, not to mypy.
    this_id: Any = Literal[eid]
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid"),
        experiment=(this_id, Field(description="the experiment's id")),
        params=(PARAMS[eid], Field(default_factory=PARAMS[eid])),
    )
    return model


# The body of POST /api/runs: one variant per experiment, told apart by "experiment".
# (Union[...] and not `X | Y`: the variants are a tuple built from the catalogue.)
RunRequest: Any = Annotated[
    Union[tuple(_run_request(eid) for eid in SPECS)],  # noqa: UP007
    Field(discriminator="experiment"),
]


def describe(spec: Experiment, full: bool = False) -> dict[str, Any]:
    """The experiment as GET /api/experiments shows it."""
    out: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title,
        "summary": spec.summary,
        # The same in Chinese ("" where the lesson has none): the page's Chinese interface.
        "title_zh": spec.title_zh,
        "summary_zh": spec.summary_zh,
        "section": spec.section,
        "params": PARAMS[spec.id].model_json_schema(),
        "compare": [dict(c) for c in spec.compare] if spec.compare else None,
        # The pair is run one after the other (each with the whole machine), not at once.
        "compare_sequential": spec.compare_sequential,
        # What the page draws above the process lanes: the page knows no lesson by name.
        "tracks": {name: asdict(track) for name, track in spec.tracks.items()},
        # Where the page zooms when a run ends, and what it writes there.
        "key_moments": [asdict(m) for m in spec.key_moments],
        # How the page draws the lesson's own kinds, and which of its threads are wiring.
        "marks": dict(spec.marks),
        "helper_threads": list(spec.helper_threads),
    }
    if full:
        out.update(lesson=spec.lesson, lesson_zh=spec.lesson_zh, code=spec.code)
    return out


def page_facts() -> dict[str, Any]:
    """What every page's browser code must know that is no one lesson's (templates put it in
    the page as `#page-facts`, static/page_facts.js reads it): the final statuses
    (app.pipe.ledger), the tracks it can draw in their order and the standard library's
    helper threads (experiments.spec). Sent, never copied into the JS by hand."""
    return {"final": sorted(FINAL), "track_kinds": list(TRACK_KINDS),
            "library_threads": list(LIBRARY_THREADS)}


def outcome(experiment_id: str, status: str, result: Any, error: str | None,
            lang: str = "en") -> Outcome | None:
    """The run's outcome in words, `{text, why, bad}`, or None while there is nothing to say.

    A run that did not succeed is told the same way for every lesson; a succeeded one by
    its experiment's own `outcome` function (the page shows it and knows nothing about
    lessons). That function reads a result that may lack any field: if it raises, the run
    is told without words (None) rather than its JSON failing. `lang="zh"`: the same in
    Chinese (the run's `outcome_zh`, for the page's Chinese interface).
    """
    zh = lang == "zh"
    if status == "failed":
        last = (error or "").strip().split("\n")[-1]
        if zh:
            return {"text": f"运行失败：{last or '请看错误回溯'}。", "why": "", "bad": True}
        return {"text": f"The run failed: {last or 'see the traceback'}.", "why": "", "bad": True}
    if status == "cancelled":
        return {"text": "运行已取消：它的每个进程都已停止。" if zh else
                "The run was cancelled: every process of it was stopped.", "why": "",
                "bad": False}
    if status == "interrupted":
        return {"text": "运行被中断：运行期间服务器停止了（被杀死或崩溃），它的进程也随之停止。"
                if zh else "The run was interrupted: the server stopped (killed or crashed) "
                "while it ran, and its processes with it.", "why": "", "bad": True}
    if status == "timed_out":
        return {"text": "运行达到了服务器的时间上限，已被停止。" if zh else
                "The run hit the server's time limit and was stopped.", "why": "",
                "bad": True}
    spec = SPECS.get(experiment_id)
    tell = None if spec is None else spec.outcome
    if status != "succeeded" or tell is None:
        return None
    if not isinstance(result, dict):
        return None
    try:
        return tell(result, "zh" if zh else "en")
    except Exception:
        log.exception("the outcome of a %s run could not be told (%s)", experiment_id, lang)
        return None


def program_outcome(status: str, exitcode: int | None, error: str | None,
                    lang: str = "en") -> Outcome | None:
    """A traced program's outcome (a run of kind `program`): how it exited, its own exit
    code, as its shell sees it; a run stopped by the server is told as any other."""
    zh = lang == "zh"
    if status not in ("succeeded", "failed") or exitcode is None:
        return outcome("program", status, None, error, lang)
    why = ("procscope trace 也以同样的退出码结束，和直接用 python 运行它时一样。" if zh else
           "procscope trace exited with the same code, as python would have.")
    if exitcode < 0:
        name = signal_name(-exitcode)
        return {"text": f"程序被 {name} 终止（退出码 {exitcode}）。" if zh else
                f"The program was killed by {name} (exit code {exitcode}).", "why": why,
                "bad": True}
    return {"text": f"程序以退出码 {exitcode} 结束。" if zh else
            f"The program exited with code {exitcode}.", "why": why if exitcode else "",
            "bad": exitcode != 0}
