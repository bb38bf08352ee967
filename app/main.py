"""The app factory and its lifespan: what the server starts and what it stops.

Runs in the server process. All cleanup lives in the lifespan's shutdown, not in atexit:
uvicorn re-raises SIGTERM after its graceful shutdown, so atexit never runs (DESIGN.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import api, pages
from app.hub import Hub
from app.runs import RunManager

ROOT = Path(__file__).resolve().parent.parent


def create_app(*, run_timeout: float = 300.0, max_events: int = 1_000_000,
               sample_hz: float = 100.0) -> FastAPI:
    hub = Hub()
    runs = RunManager(hub, run_timeout=run_timeout, max_events=max_events,
                      sample_hz=sample_hz)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runs.start()
        try:
            yield
        finally:
            await runs.shutdown()

    app = FastAPI(title="procscope", version="0.1.0", lifespan=lifespan,
                  description="A live, truthful view of what Python's multiprocessing does.")
    app.state.hub = hub
    app.state.runs = runs
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    return app


def serve(*, host: str, port: int, token: str | None, run_timeout: float, max_events: int,
          sample_hz: float, log_level: str) -> None:
    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if not 1 <= sample_hz <= 1000:
        raise SystemExit("procscope: --sample-hz must be between 1 and 1000")
    app = create_app(run_timeout=run_timeout, max_events=max_events, sample_hz=sample_hz)
    print(f"procscope: open http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=3)
