"""The REST API of docs/api.md: experiments, runs, and their event streams.

Runs in the server, on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from procscope import i18n
from procscope.history import run_export
from procscope.live import catalog
from procscope.live.run_owner import RunOwner
from procscope.live.runs import CapReached, RunLive
from procscope.live.said import Problem, error_answers, message, said
from procscope.pipe.events import Format
from procscope.pipe.ledger import FINAL
from procscope.streams import stream
from procscope.streams.hub import RunLog

# app.web.guard answers these before any route; said once here for all of them.
router = APIRouter(prefix="/api", responses=error_answers(400, 401, 403))


def _manager(request: Request) -> RunOwner:
    manager: RunOwner = request.app.state.runs
    return manager


def _run_or_404(request: Request, run_id: str) -> Any:
    run = _manager(request).runs.get(run_id)
    if run is None:
        raise HTTPException(404, said("no run %(run)s", run=repr(run_id)))
    return run


def _log(request: Request, run_id: str) -> RunLog:
    _run_or_404(request, run_id)
    log = _manager(request).hub.get(run_id)
    assert log is not None
    return log


@router.get("/status", summary="The server's own state: live runs, streams, tasks, fds")
async def server_status(request: Request) -> dict[str, Any]:
    manager = _manager(request)
    live = [r for r in manager.runs.values() if r.status not in FINAL]
    return {
        "pid": os.getpid(),
        "runs": len(manager.runs),
        "runs_live": len(live),
        "processes_live": sum(r.processes_live for r in live),
        "streams": request.app.state.streams.live,
        # Of them, those the fan-out serves together now, and how the backlog was shared.
        "fanout": request.app.state.fanouts.status(),
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "fds": len(os.listdir("/proc/self/fd")),
        # Of those, the stat files the kernel sampler keeps open for live runs' processes
        # and threads: they come and go with the runs, not with the clients.
        "sampler_fds": manager.sampler.open_files(),
        "caps": {"runs": manager.max_runs, "processes": manager.max_processes,
                 "streams": request.app.state.streams.cap, "events": manager.max_events},
        # Where runs are kept: {"db": ":memory:"}, or the file, its bytes, the events not
        # yet written, the writer's last error (null while it writes); with --redis, Redis
        # (app.cluster.cluster_runs.ClusterRuns.history_status).
        "history": manager.history_status(),
        # With --redis: this replica's id, every live replica with its load, Redis's state.
        **({"cluster": cluster} if (cluster := manager.cluster_status()) is not None
           else {}),
    }


@router.get("/experiments", summary="The catalogue of lessons")
async def list_experiments() -> list[dict[str, Any]]:
    return [catalog.describe(spec) for spec in catalog.SPECS.values()]


@router.get("/experiments/{experiment_id}", summary="One lesson, with its explanation",
            responses=error_answers(404))
async def get_experiment(experiment_id: str) -> dict[str, Any]:
    spec = catalog.SPECS.get(experiment_id)
    if spec is None:
        raise HTTPException(404, f"no experiment {experiment_id!r}; valid: "
                            f"{', '.join(sorted(catalog.SPECS))}")
    return catalog.describe(spec, full=True)


@router.post("/runs", status_code=201, summary="Start a run of one experiment",
             responses=error_answers(413, 415, 429))
async def create_run(request: Request, response: Response,
                     body: Annotated[catalog.RunRequest, Body()]) -> dict[str, Any]:
    # On the event loop's thread, on purpose (an async endpoint, not FastAPI's thread
    # pool): PR_SET_PDEATHSIG fires when the *thread* that started the run's main exits,
    # and the pool's threads exit after 10 s idle; the loop's lives as long as the server.
    try:
        run = _manager(request).create(body.experiment, body.params.model_dump())
    except CapReached as e:
        raise HTTPException(429, message(e)) from None
    # The id is handed out once the run's record is on disk: a server killed right after
    # cannot give the same id to another run when it starts again.
    await _manager(request).written()
    response.headers["Location"] = f"/api/runs/{run.id}"
    return run.to_json()


@router.get("/runs", summary="All runs, newest first")
async def list_runs(request: Request) -> list[dict[str, Any]]:
    runs = list(_manager(request).runs.values())
    return [run.to_json() for run in reversed(runs)]


@router.get("/runs/{run_id}", summary="One run: status, result, error",
            responses=error_answers(404))
async def get_run(request: Request, run_id: str) -> dict[str, Any]:
    run = _run_or_404(request, run_id)
    data: dict[str, Any] = run.to_json()
    return data


@router.delete("/runs/{run_id}", summary="Cancel a run; returns once all its processes are gone",
               responses=error_answers(404))
async def cancel_run(request: Request, run_id: str) -> dict[str, Any]:
    _run_or_404(request, run_id)
    run = await _manager(request).cancel(run_id)
    data: dict[str, Any] = run.to_json()
    return data


@router.delete("/runs/{run_id}/history", status_code=204,
               summary="Forget a finished run: its record and its events, for good",
               responses=error_answers(404, 409))
async def forget_run(request: Request, run_id: str) -> Response:
    _run_or_404(request, run_id)
    try:
        _manager(request).forget(run_id)
    except RunLive as e:
        raise HTTPException(409, str(e)) from None
    await _manager(request).written()
    return Response(status_code=204)


def _run_stream(request: Request, run_id: str, after: int, fmt: Format) -> stream.RunStream:
    return stream.for_request(request, _log(request, run_id), after, fmt)


@router.get("/runs/{run_id}/events", summary="The run's events as Server-Sent Events",
            responses=error_answers(404, 503),
            response_class=StreamingResponse)
async def run_events(
    request: Request, run_id: str,
    after: Annotated[int | None, Query(ge=0, description="resume after this seq")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> stream.RunStream:
    return _run_stream(request, run_id, stream.cursor(after, last_event_id), "sse")


@router.get("/runs/{run_id}/events.ndjson", summary="The run's events as NDJSON",
            responses=error_answers(404, 503),
            response_class=StreamingResponse)
async def run_events_ndjson(
    request: Request, run_id: str,
    after: Annotated[int | None, Query(ge=0, description="resume after this seq")] = None,
) -> stream.RunStream:
    return _run_stream(request, run_id, stream.cursor(after, None), "ndjson")


# --- exports and import (docs/api.md, "Exports") ---

async def _export(request: Request, run_id: str, fmt: str, inline: bool = False,
                  lang: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The run's export in `fmt`, built by app.history.run_export (as `procscope export`
    builds it from a history file)."""
    run = _run_or_404(request, run_id).to_json()
    ndjson = await run_export.log_ndjson(_log(request, run_id))
    body = await asyncio.to_thread(run_export.build, fmt, run, ndjson, lang)
    how = "inline" if inline else "attachment"
    return Response(body, media_type=run_export.FORMATS[fmt].media_type, headers={
        "Content-Disposition": f'{how}; filename="{run_export.file_name(run_id, fmt)}"',
        "Cache-Control": "no-store"} | (headers or {}))


@router.get("/runs/{run_id}/trace.json",
            summary="The run as a Chrome Trace Event file (Perfetto, speedscope)",
            responses=error_answers(404))
async def run_trace(request: Request, run_id: str) -> Response:
    return await _export(request, run_id, "trace")


@router.get("/runs/{run_id}/replay.html",
            summary="The run as one HTML file that replays it offline",
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                             "description": "The replay: one HTML file"}, **error_answers(404)})
async def run_replay(request: Request, run_id: str) -> Response:
    # Made in this request's language (the switch's cookie, else Accept-Language), as a page
    # is; the file holds both, and the reader's browser chooses when it is opened.
    return await _export(request, run_id, "html", inline=True, lang=i18n.language(request),
                         headers={"Vary": "Accept-Language, Cookie"})


IMPORT_BODY = {"required": True, "content": {
    "application/x-ndjson": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}


@router.post("/runs/import", status_code=201,
             summary="Bring an exported run (its events.ndjson) back, as a new run",
             responses={**error_answers(413, 415),
                        422: {"model": Problem,
                              "description": "The body is not one run's whole export"}},
             openapi_extra={"requestBody": IMPORT_BODY})
async def import_run(request: Request, response: Response) -> dict[str, Any]:
    from procscope.history.run_import import NotAnExport, check, new_run, restamp

    manager = _manager(request)
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        export = await asyncio.to_thread(check, body, content_type, set(catalog.SPECS),
                                         manager.max_events)
    except NotAnExport as e:
        raise HTTPException(422, message(e)) from None
    run_id = manager.next_id()
    events = await asyncio.to_thread(restamp, export, run_id)
    run = manager.adopt(new_run(export, run_id), events)
    await manager.written()
    response.headers["Location"] = f"/api/runs/{run.id}"
    data: dict[str, Any] = run.to_json()
    return data
