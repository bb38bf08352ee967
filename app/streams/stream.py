"""Streaming a log to a client: SSE frames or NDJSON lines.

Runs in the server, on its event loop. A run's stream is `RunStream`, an ASGI response of
our own: it parks with the log's fanout (app.streams.fanout) at its cursor, behind (a
replay, a student joining mid-run, a reconnect) or at the end, and the fanout reads once per
flush for every viewer at the same cursor and writes the same chunk to each
(app.streams.outlet: straight into the connection under uvicorn). Its own coroutine only
waits while its connection is full. curl still sees one `id:/event:/data:` frame per event.

Every stream is one: a run's, in SSE or NDJSON, and the classroom's news
(app.classroom.classroom). All stop on one signal, the app's `stopping` (set by
app.web.main's server the moment a stop is asked for): each then ends with a
`server.stopping` line of its own. Why not sse-starlette's EventSourceResponse (the design
card's): app.streams.outlet says, with the figure.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from procscope.pipe.events import RETRY_FRAME, Format, server_stopping
from procscope.streams.fanout import Fanout, Fanouts, Viewer
from procscope.streams.hub import RunLog
from procscope.streams.outlet import Chunk, Outlet, outlet_for

log = logging.getLogger("procscope.streams.stream")
# Seconds between two keep-alive comments of an idle stream (runs and the classroom news):
# what keeps a proxy from closing it, and lets a disconnect be noticed.
PING_SECONDS = 15


class Streams:
    """Counts live streams against a cap, so that a crowd gets a clear 503, not a hang."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.live = 0

    def full(self) -> bool:
        return self.live >= self.cap


def start_cursor(log: RunLog, after: int) -> int:
    """Where a stream of `log` resumed after seq `after` starts.

    Not clamped to what this log holds yet: a replica still catching up with the owner
    (or a reconnect that outran the reader) waits for the events after `after` instead of
    sending again the ones the client already has. Only a finished log clamps.
    """
    return max(0, min(after, len(log)) if log.ended else after)


def ping_frame() -> bytes:
    """The SSE comment that keeps a quiet stream's connection alive through proxies."""
    return f": ping - {datetime.now(UTC)}\n\n".encode()


def cursor(after: int | None, last_event_id: str | None, default: int = 0) -> int:
    """Where a stream starts: after `after` (or `default`), or after the client's
    Last-Event-ID if that is later (a reconnecting EventSource resumes there)."""
    start = default if after is None else after
    if last_event_id and last_event_id.strip().isdigit():
        start = max(start, int(last_event_id))
    return start


def for_request(request: Request, log: RunLog, after: int, fmt: Format) -> RunStream:
    """The stream of `log` after seq `after` for a request, with the app's fanouts, cap,
    stop signal and send timeout; 503 if the streams are at their cap."""
    state = request.app.state
    streams: Streams = state.streams
    if streams.full():
        raise HTTPException(503, f"{streams.live} streams are open, the cap is {streams.cap}; "
                            "try again shortly", headers={"Retry-After": "5"})
    return RunStream(log, after, fmt, fanouts=state.fanouts, streams=streams,
                     stopping=state.stopping, send_timeout=state.send_timeout)


class RunStream(Response):
    """A log's events after a seq, live, until its end (a run's run.end; the classroom's
    news never ends) or the server's stop: SSE (`retry:` first) or NDJSON."""

    def __init__(self, log: RunLog, after: int, fmt: Format, *, fanouts: Fanouts,
                 streams: Streams, stopping: asyncio.Event, send_timeout: float) -> None:
        self.status_code = 200
        self.background = None
        self.media_type = "text/event-stream" if fmt == "sse" else "application/x-ndjson"
        headers = {"Cache-Control": "no-store"}
        if fmt == "sse":  # what proxies read (sse-starlette's headers, kept)
            headers.update({"Connection": "keep-alive", "X-Accel-Buffering": "no"})
        self.init_headers(headers)
        self._log = log
        self._after = after
        self._fmt = fmt
        self._fanouts = fanouts
        self._streams = streams
        self._stopping = stopping
        self._send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        outlet = outlet_for(scope, send)
        viewer = Viewer(start_cursor(self._log, self._after), outlet)
        fanout = self._fanouts.get(self._log, self._fmt)
        self._streams.live += 1
        watcher = asyncio.ensure_future(_on_disconnect(receive, fanout, viewer))
        try:
            await self._serve(fanout, viewer, outlet, scope)
        finally:
            watcher.cancel()
            fanout.unpark(viewer, "gone")  # if it was still parked (cancelled)
            self._fanouts.release(fanout)
            self._streams.live -= 1

    async def _serve(self, fanout: Fanout, viewer: Viewer, outlet: Outlet,
                     scope: Scope) -> None:
        log, fmt = self._log, self._fmt
        if fmt == "sse":
            outlet.write(Chunk(RETRY_FRAME))
        while True:
            if viewer.gone or outlet.gone():
                return
            if self._stopping.is_set():
                break
            if log.done(viewer.cursor):
                await self._finish(outlet, b"", scope)
                return
            if not outlet.writable():
                # Its connection is full (the client reads slowly): wait for it, never past
                # the send timeout (and nobody else waits meanwhile).
                try:
                    async with asyncio.timeout(self._send_timeout):
                        await outlet.drain()
                except TimeoutError:
                    _dropped(outlet, scope)
                    return
                continue
            # Behind the log's end or at it, the fanout serves it with the viewers at the
            # same point (a class that opens a running lesson reads its backlog together).
            why = await fanout.park(viewer)
            if why == "end":
                await self._finish(outlet, b"", scope)
                return
            if why == "gone":
                return
            if why == "failed":
                outlet.drop()
                return
            if why == "stopping":
                break
            # "behind": its connection was full at a flush
        await self._finish(outlet, b"" if log.ended else server_stopping(fmt), scope)

    async def _finish(self, outlet: Outlet, last: bytes, scope: Scope) -> None:
        try:
            async with asyncio.timeout(self._send_timeout):
                await outlet.finish(last)
        except TimeoutError:
            _dropped(outlet, scope)


def _dropped(outlet: Outlet, scope: Scope) -> None:
    # One line at INFO, not a traceback: a stalled laptop in a class is not an error.
    log.info("dropped a client that stopped reading: %s", scope.get("client"))
    outlet.drop()


async def _on_disconnect(receive: Receive, fanout: Fanout, viewer: Viewer) -> None:
    """Runs beside a stream: the client went away (uvicorn says so through receive())."""
    while (await receive())["type"] != "http.disconnect":
        pass
    viewer.gone = True
    fanout.unpark(viewer, "gone")
