"""The app factory and its lifespan: what the server starts and what it stops.

Runs in the server process. All cleanup lives in the lifespan's shutdown, not in atexit:
uvicorn re-raises SIGTERM after its graceful shutdown, so atexit never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from procscope.classroom import classroom, what_if
from procscope.history.history_db import HistoryError
from procscope.live.run_owner import RunOwner
from procscope.live.runs import RunManager
from procscope.resources import STATIC
from procscope.settings import Settings
from procscope.streams.fanout import Fanouts
from procscope.streams.hub import Hub, MemoryHub, RunStore
from procscope.streams.outlet import keep_server_send
from procscope.streams.stream import PING_SECONDS, Streams, ping_frame
from procscope.trace.program_socket import ProgramSocket
from procscope.web import api, error_pages, invalid_input, links, pages
from procscope.web.guard import Guard

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def viewer_token_for(admin_token: str) -> str:
    """The students' link token: derived from the admin token, useless to start runs."""
    return hmac.new(admin_token.encode(), b"procscope viewer", hashlib.sha256).hexdigest()[:32]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(db=":memory:")
    hub: Hub
    store: RunStore | None = None
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{settings.port}"  # where we serve
    streams = Streams(settings.max_streams)
    runs: RunOwner
    room: classroom.Classroom
    if settings.redis:
        # Replicas sharing runs (app.cluster.cluster_runs); Redis keeps the runs, not --db.
        from procscope.cluster.cluster_runs import ClusterRuns
        from procscope.cluster.redis_hub import RedisHub

        redis_hub = RedisHub(settings.redis)  # RedisUnreachable: says where and why
        cluster = ClusterRuns(redis_hub, settings, url, streams)  # its load: streams too
        runs = cluster
        room = cluster.classroom  # the cluster's (app.cluster.redis_classroom), every replica's
    else:
        if settings.db == ":memory:":
            hub = MemoryHub()
        else:
            # Imported here: a server without history never loads sqlite3's threads and files.
            from procscope.history.sqlite_hub import SqliteHub

            hub = store = SqliteHub(settings.db)  # HistoryError: not ours, damaged, or in use
        runs = RunManager(hub, settings, store=store)
        room = classroom.Classroom()
    programs = ProgramSocket(runs, url)
    stopping = asyncio.Event()  # set by serve()'s server the moment a stop is asked for

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await runs.start()
        except BaseException:
            if store is not None:
                store.close()
            raise
        try:
            # `procscope trace` finds this server through the user's runtime directory; a
            # server that cannot make its socket there still serves the dashboard.
            await programs.start()
        except OSError as e:
            logging.getLogger("procscope").warning("no socket for `procscope trace`: %s", e)
        try:
            yield
        finally:
            stopping.set()  # under a server other than serve()'s, at the latest here
            await programs.stop()
            await runs.shutdown()
            if store is not None:
                store.close()  # after the runs' last events: they are written first

    app = _App(title="procscope", version="0.1.0", lifespan=lifespan,
               description="A live, truthful view of what Python's multiprocessing does.")
    app.state.runs = runs
    app.state.classroom = room
    runs.on_created.append(room.run_created)
    app.state.streams = streams
    app.state.stopping = stopping
    app.state.fanouts = Fanouts(stopping, ping_frame, PING_SECONDS)
    app.state.send_timeout = settings.send_timeout
    # A refusal the page shows carries its catalog key beside the English (app.live.said); a
    # browser opening a page gets an error page instead (app.web.error_pages); a 422 says its
    # msg in the request's language (app.web.invalid_input).
    app.add_exception_handler(StarletteHTTPException, error_pages.http_exception)
    app.add_exception_handler(RequestValidationError, invalid_input.request_validation_error)
    app.include_router(api.router)
    app.include_router(classroom.router)
    app.include_router(what_if.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    allowed = LOOPBACK_NAMES | {settings.host.lower()}
    if settings.host in ("0.0.0.0", "::"):
        allowed = {"*"}  # every interface: any name may reach us; the token still holds
    token = settings.token
    app.add_middleware(Guard, allowed_hosts=allowed, admin_token=token,
                       viewer_token=viewer_token_for(token) if token else None)
    return app


class _App(FastAPI):
    """FastAPI, handing the ASGI server's own `send` to app.streams.outlet before any
    middleware wraps it (that module says why, and is the only one that looks behind it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keep_server_send(scope, send)
        await super().__call__(scope, receive, send)


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app's streams the moment a stop is asked for.

    uvicorn waits for open connections before the lifespan's shutdown: a stream that is
    only told then has already been cut.
    """

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # No loop running yet (or any more): nothing to tell.
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_soon_threadsafe(self.stopping.set)


def _listen(host: str, port: int, send_timeout: float) -> socket.socket:
    """The server's socket, bound before the app is made (serve() says why)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        print(f"procscope: cannot listen on {host}:{port}: {e.strerror}", file=sys.stderr)
        raise SystemExit(3) from None  # uvicorn's STARTUP_FAILURE
    sock.set_inheritable(False)  # no run may hold the server's socket
    # A client that stops reading: the stream's send_timeout ends the response, but the
    # connection would live on, its unsent bytes queued (asyncio closes a transport only
    # once its buffer drains) with an fd and megabytes of kernel buffer held. With
    # TCP_USER_TIMEOUT the kernel drops a connection whose data has waited unacknowledged
    # (zero window) that long; accepted sockets inherit it from the listening one.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(send_timeout * 1000))
    # Listening from now on: the links are printed before uvicorn starts serving, and a
    # connection made meanwhile (a click on the link, a test) waits in the backlog instead
    # of being refused (seen under load: httpx.ConnectError right after the link).
    sock.listen(2048)  # uvicorn's default backlog; its create_server() listens again
    return sock


def serve(settings: Settings, log_level: str) -> None:
    """Serve the dashboard (or supervise --replicas servers) until stopped. The values are
    the Settings' own to check: they refused any no server can run with."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    token = settings.token
    generated = token is None and not is_loopback(settings.host)
    if generated:
        token = secrets.token_urlsafe(32)  # 256 bits
        settings = dataclasses.replace(settings, token=token)
    viewer = viewer_token_for(token) if token else None
    if settings.replicas > 1:
        from procscope.cluster.replicas import supervise  # N replica servers; the token is shared

        if generated:  # each replica is given it: only here is it new, and printed
            links.print_links(links.link_hosts(settings.host), settings.port, token, viewer,
                              generated=True)
        raise SystemExit(supervise(settings, log_level))
    sock = _listen(settings.host, settings.port, settings.send_timeout)
    # The port the kernel chose for --port 0: the app's own links (a traced program's
    # page) and the printed ones must say it.
    settings = dataclasses.replace(settings, port=sock.getsockname()[1])
    try:
        app = create_app(settings)
    except (RuntimeError, HistoryError) as e:  # e.g. --cpu-lanes exact where the kernel
        sock.close()  # refuses, a --db that is not ours
        raise SystemExit(f"procscope: {e}") from None
    takes_ipv4 = sock.family == socket.AF_INET or not sock.getsockopt(
        socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    links.print_links(links.link_hosts(settings.host, takes_ipv4=takes_ipv4), settings.port,
                      token, viewer, generated)
    # With a token in force the access log is off: it would print ?token= query strings.
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=log_level, access_log=token is None,
                            timeout_graceful_shutdown=3)
    server = _Server(config, app.state.stopping)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE
