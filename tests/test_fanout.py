"""Issue 17, fan-out: many viewers of one live run are served together (app.streams.fanout).

What a viewer must still see, whoever else watches: `retry:` first, then every event of the
run once, in seq order, byte for byte the frames a replay of the finished run gives (one
chunk read per flush is handed to every viewer at the same cursor: a viewer given another's
cursor or a chunk twice would show here); resuming with `?after=` / `Last-Event-ID` mid-run;
NDJSON the same. A viewer whose connection fills up falls behind and catches up alone,
missing nothing. Under another ASGI server than uvicorn's httptools protocol (uvicorn's h11
here) the streams go through ASGI's send (app.streams.outlet's fallback) and say the same.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import ROOT, Server, free_port

RETRY = b"retry: 2000\n\n"
LIMIT = 60  # seconds any test here may read for, at most


def frames_of(sse: bytes) -> list[bytes]:
    """The event frames of an SSE body (each ending in its blank line), `retry:` cut."""
    assert sse.startswith(RETRY)
    return [f + b"\n\n" for f in sse[len(RETRY):].split(b"\n\n") if f]


async def read_body(client: httpx.AsyncClient, path: str,
                    started: asyncio.Event | None = None,
                    headers: dict[str, str] | None = None) -> bytes:
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        if started is not None:
            started.set()
        return b"".join([chunk async for chunk in response.aiter_bytes()])


async def watch_live(url: str, run_id: str, sse: int, ndjson: int, joiners: int,
                     join_after: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """`sse` + `ndjson` viewers from the run's start, and `joiners` that connect mid-run
    with Last-Event-ID `join_after` (half) or ?after= (half), once the first viewer has
    seen more than that; every body to its end."""
    path = f"/api/runs/{run_id}/events"
    limits = httpx.Limits(max_connections=sse + ndjson + joiners + 4)
    async with asyncio.timeout(LIMIT), httpx.AsyncClient(base_url=url, timeout=LIMIT,
                                                         limits=limits) as client:
        seen_enough = asyncio.Event()

        async def first_viewer() -> bytes:
            chunks = []
            async with client.stream("GET", path) as response:
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    if b"id: %d\n" % (join_after + 1) in b"".join(chunks[-2:]):
                        seen_enough.set()
            seen_enough.set()
            return b"".join(chunks)

        async def joiner(i: int) -> bytes:
            await seen_enough.wait()
            if i % 2:
                return await read_body(client, f"{path}?after={join_after}")
            return await read_body(client, path, headers={"Last-Event-ID": str(join_after)})

        first = asyncio.ensure_future(first_viewer())
        live = [asyncio.ensure_future(read_body(client, path)) for _ in range(sse - 1)]
        lines = [asyncio.ensure_future(read_body(client, path + ".ndjson"))
                 for _ in range(ndjson)]
        late = [asyncio.ensure_future(joiner(i)) for i in range(joiners)]
        bodies = await asyncio.gather(first, *live)
        return list(bodies), list(await asyncio.gather(*lines)), \
            list(await asyncio.gather(*late))


def start_flood(url: str, **params: float) -> str:
    r = httpx.post(url + "/api/runs", json={"experiment": "flood", "params": params},
                   timeout=30)
    assert r.status_code == 201, r.text
    run_id: str = r.json()["id"]
    return run_id


def check_viewers(url: str, run_id: str, bodies: list[bytes], lines: list[bytes],
                  late: list[bytes], join_after: int) -> None:
    """Every live body is the finished run's replay (or its tail after `join_after`)."""
    replay = httpx.get(f"{url}/api/runs/{run_id}/events", timeout=30).content
    replay_lines = httpx.get(f"{url}/api/runs/{run_id}/events.ndjson", timeout=30).content
    frames = frames_of(replay)
    assert b"event: run.end\n" in frames[-1]
    assert len(frames) == replay_lines.count(b"\n")
    for body in bodies:
        assert body == replay  # retry first; every frame once, in order, the same bytes
    for body in lines:
        assert body == replay_lines
    tail = RETRY + b"".join(frames[join_after:])
    for body in late:
        assert body == tail  # resumed after join_after: nothing before it, nothing twice


@pytest.fixture(scope="module")
def flood_server() -> Iterator[Server]:
    srv = Server(env={"PROCSCOPE_SELFTEST": "1"})
    yield srv
    srv.stop()


def test_forty_live_viewers_and_late_joiners_get_the_same_frames_each_once(
        flood_server: Server) -> None:
    # 4 x 300 events at 600/s: the viewers share flushes for about two seconds.
    run_id = start_flood(flood_server.url, processes=4, events=300, rate=150)
    bodies, lines, late = asyncio.run(
        watch_live(flood_server.url, run_id, sse=30, ndjson=6, joiners=6, join_after=400))
    check_viewers(flood_server.url, run_id, bodies, lines, late, join_after=400)


def read_chunked(sock: socket.socket) -> bytes:
    """An HTTP/1.1 chunked answer's body, read from `sock` to its last chunk."""
    data = b""
    deadline = time.monotonic() + LIMIT

    def more() -> None:
        nonlocal data
        assert time.monotonic() < deadline, "the answer did not end"
        got = sock.recv(1 << 16)
        assert got, "the server closed the connection before the answer's end"
        data += got

    while b"\r\n\r\n" not in data:
        more()
    head, data = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head
    body: list[bytes] = []
    while True:
        while b"\r\n" not in data:
            more()
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(data) < size + 2:
            more()
        if size == 0:
            return b"".join(body)
        body.append(data[:size])
        data = data[size + 2:]


def test_a_viewer_whose_connection_filled_up_catches_up_alone_missing_nothing(
        flood_server: Server) -> None:
    # ~8 MB of events as fast as they come: far more than a 64 KiB receive buffer and the
    # server's send buffer (at most 4 MB, net.ipv4.tcp_wmem) hold, so the fanout finds this
    # viewer's connection full and hands it back; it reads nothing until another viewer
    # has the whole run. (With a 4 KiB receive buffer, 1 run in ~8 trickled for a minute:
    # the kernel took the server's last 100 KB at a few KB a probe while the client read
    # all it was given. A phone's buffer is not 4 KiB; that case is left to TCP.)
    run_id = start_flood(flood_server.url, processes=4, events=2000, payload=1000)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stalled.settimeout(LIMIT)
    try:
        stalled.connect(("127.0.0.1", flood_server.port))
        stalled.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\n"
                        f"Host: 127.0.0.1:{flood_server.port}\r\n\r\n".encode())
        t0 = time.monotonic()
        other = httpx.get(f"{flood_server.url}/api/runs/{run_id}/events", timeout=LIMIT)
        assert other.content.endswith(b"\n\n") and b"event: run.end" in other.content
        assert time.monotonic() - t0 < LIMIT
        body = read_chunked(stalled)
    finally:
        stalled.close()
    assert len(other.content) > 8_000_000
    assert body == other.content


@pytest.fixture
def h11_server() -> Iterator[str]:
    """The app under uvicorn's pure-Python h11 protocol: no transport to write to.

    Per test, so that it (and its spawn helper, the resource tracker) is gone before the
    check for processes left behind."""
    port = free_port()
    code = ("import uvicorn; from procscope.web.main import create_app; "
            f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, http='h11', "
            "log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                            env={**os.environ, "PROCSCOPE_SELFTEST": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/api/status", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, "no h11 server"
            time.sleep(0.05)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_under_uvicorns_h11_protocol_the_streams_say_the_same(h11_server: str) -> None:
    run_id = start_flood(h11_server, processes=2, events=200, rate=200)
    bodies, lines, late = asyncio.run(
        watch_live(h11_server, run_id, sse=5, ndjson=2, joiners=2, join_after=150))
    check_viewers(h11_server, run_id, bodies, lines, late, join_after=150)
