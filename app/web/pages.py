"""The HTML pages: the dashboard and one run's shareable page.

Runs in the server. Server-rendered with Jinja2; htmx drives the controls and the run list,
static/timeline.js draws the events. Every page and partial is rendered in the request's
language (app.i18n: the switch's cookie, else Accept-Language).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from procscope import i18n
from procscope.classroom import predictions
from procscope.live import catalog
from procscope.live.run_record import program_view
from procscope.live.said import said
from procscope.resources import TEMPLATES

_env = i18n.install(Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape()))
templates = Jinja2Templates(env=_env, context_processors=[i18n.context])
router = APIRouter(include_in_schema=False)


def how_to_get_in(lang: str) -> bytes:
    """The page app.web.guard answers a browser that has no token's cookie with, in `lang`."""
    return _env.get_template("how_to_get_in.html").render(
        lang=lang, i18n_catalog=i18n.page_catalog(lang)).encode()


def error_page(lang: str, status: int, heading: str, detail: str, detail_lang: str) -> bytes:
    """The page a browser gets for an error (app.web.error_pages), in `lang`: `heading` and
    `detail` said already, `detail` in `detail_lang`."""
    return _env.get_template("error.html").render(
        lang=lang, i18n_catalog=i18n.page_catalog(lang), status=status, heading=heading,
        detail=detail, detail_lang=detail_lang).encode()


def _experiments() -> list[dict[str, Any]]:
    return [catalog.describe(spec, full=True) for spec in catalog.SPECS.values()]


def _role(request: Request) -> str:
    """'admin' (may start and stop runs) or 'viewer' (watches): app.web.guard decided."""
    role = getattr(request.state, "role", None)
    return role if role in ("admin", "viewer") else "viewer"


def _page(request: Request, chosen: str, run: dict[str, Any] | None) -> dict[str, Any]:
    # `cores`: the timeline draws one lane per core from the first frame, before any event
    # has named a core (a lane for a core no event mentions yet is still the truth: idle).
    # `role`: the page shows only the controls this viewer may use. `news`: the classroom
    # stream's seq as of this page, so that nothing started since is missed
    # (app.classroom.classroom). `facts`: what the browser code must know that is no one
    # lesson's (app.live.catalog.page_facts).
    classroom = request.app.state.classroom
    values = run["params"] if run is not None and run["experiment"] == chosen else None
    return {"experiments": _experiments(), "chosen": chosen, "run": run,
            "form_run": run["id"] if values is not None and run is not None else None,
            "program": program_view(run) if run is not None and run["program"] else None,
            "cores": os.cpu_count() or 1, "role": _role(request), "values": values,
            "news": len(classroom.news), "question": classroom.predictions.public(),
            "newest": next(reversed(request.app.state.runs.runs), None),
            "prediction": predictions.lesson_question(chosen), "facts": catalog.page_facts()}


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, experiment: str | None = None) -> HTMLResponse:
    chosen = experiment if experiment in catalog.SPECS else next(iter(catalog.SPECS))
    page = _page(request, chosen, None)
    # An open question is about a lesson and its params: the form shows them, unless the
    # address names another lesson.
    question = page["question"]
    if experiment is None and question and question["open"] and \
            question["experiment"] in catalog.SPECS:
        page = _page(request, question["experiment"], None) | {"values": question["params"]}
    return templates.TemplateResponse(request, "index.html", page)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str) -> HTMLResponse:
    run = request.app.state.runs.runs.get(run_id)
    if run is None:
        raise HTTPException(404, said("no run %(run)s", run=repr(run_id)))
    # A run of kind `program` (procscope trace) has no lesson: the form shows the first.
    chosen = run.experiment if run.experiment in catalog.SPECS else next(iter(catalog.SPECS))
    return templates.TemplateResponse(request, "index.html",
                                      _page(request, chosen, run.to_json()))


@router.get("/partials/form/{experiment_id}", response_class=HTMLResponse)
async def params_form(request: Request, experiment_id: str, run: str | None = None,
                      question: str | None = None) -> HTMLResponse:
    spec = catalog.SPECS.get(experiment_id)
    if spec is None:
        raise HTTPException(404, said("no experiment %(experiment)s",
                                      experiment=repr(experiment_id)))
    # ?run=N: the form filled with that run's params (a page that followed the teacher's run).
    shown = request.app.state.runs.runs.get(run) if run is not None else None
    values = shown.params if shown is not None and shown.experiment == experiment_id else None
    # ?question=ID: with the params of the open question about this lesson (predict.js).
    asked = request.app.state.classroom.predictions.public() if question is not None else None
    if asked and asked["open"] and str(asked["id"]) == question and \
            asked["experiment"] == experiment_id:
        values = asked["params"]
    return templates.TemplateResponse(request, "partials/form.html", {
        "experiment": catalog.describe(spec, full=True), "role": _role(request),
        "values": values, "form_run": shown.id if values is not None and shown else None,
        "prediction": predictions.lesson_question(experiment_id)})


@router.get("/partials/program/{run_id}", response_class=HTMLResponse)
async def program_panel(request: Request, run_id: str) -> HTMLResponse:
    """The sidebar of a traced program's run: a page that shows one swaps it in."""
    run = request.app.state.runs.runs.get(run_id)
    if run is None or run.program is None:
        raise HTTPException(404, f"no program run {run_id!r}")
    return templates.TemplateResponse(request, "partials/program.html",
                                      {"program": program_view(run.to_json())})


@router.get("/partials/runs", response_class=HTMLResponse)
async def runs_list(request: Request) -> HTMLResponse:
    runs = [run.to_json() for run in reversed(list(request.app.state.runs.runs.values()))]
    return templates.TemplateResponse(request, "partials/runs.html", {"runs": runs[:30]})
