"""The HTML pages: the dashboard and one run's shareable page.

Runs in the server. Server-rendered with Jinja2; htmx drives the controls and the run list,
static/timeline.js draws the events.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app import catalog

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
router = APIRouter(include_in_schema=False)


def _experiments() -> list[dict[str, Any]]:
    return [catalog.describe(spec, full=True) for spec in catalog.SPECS.values()]


def _page(chosen: str, run: dict[str, Any] | None) -> dict[str, Any]:
    # `cores`: the timeline draws one lane per core from the first frame, before any event
    # has named a core (a lane for a core no event mentions yet is still the truth: idle).
    return {"experiments": _experiments(), "chosen": chosen, "run": run,
            "cores": os.cpu_count() or 1}


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, experiment: str | None = None) -> HTMLResponse:
    chosen = experiment if experiment in catalog.SPECS else next(iter(catalog.SPECS))
    return templates.TemplateResponse(request, "index.html", _page(chosen, None))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str) -> HTMLResponse:
    run = request.app.state.runs.runs.get(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    # A run of kind `program` (procscope trace) has no lesson: the form shows the first.
    chosen = run.experiment if run.experiment in catalog.SPECS else next(iter(catalog.SPECS))
    return templates.TemplateResponse(request, "index.html", _page(chosen, run.to_json()))


@router.get("/partials/form/{experiment_id}", response_class=HTMLResponse)
async def params_form(request: Request, experiment_id: str) -> HTMLResponse:
    spec = catalog.SPECS.get(experiment_id)
    if spec is None:
        raise HTTPException(404, f"no experiment {experiment_id!r}")
    return templates.TemplateResponse(request, "partials/form.html", {
        "experiment": catalog.describe(spec, full=True)})


@router.get("/partials/runs", response_class=HTMLResponse)
async def runs_list(request: Request) -> HTMLResponse:
    runs = [run.to_json() for run in reversed(list(request.app.state.runs.runs.values()))]
    return templates.TemplateResponse(request, "partials/runs.html", {"runs": runs[:30]})
