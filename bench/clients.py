"""SSE clients for the benchmarks: raw asyncio sockets, so the client costs little.

Runs in a bench process of its own (see bench.pipeline), never in the server. A "counter"
only counts frames with bytes.count; a "probe" parses every frame to time it: delay =
its monotonic clock now - (the run's t0 + the event's t). CLOCK_MONOTONIC is system-wide
on Linux, so both ends read the same clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class ClientStats:
    frames: int = 0
    first: float = 0.0
    last: float = 0.0
    delays: list[float] = field(default_factory=list)


async def _open(host: str, port: int, path: str) -> tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")  # response headers
    return reader, writer


async def sse_client(host: str, port: int, run_id: str, kind: bytes, probe: bool,
                     t0: int | None = None) -> ClientStats:
    """Read a run's SSE stream to its end, counting (and if probe, timing) `kind` frames."""
    stats = ClientStats()
    reader, writer = await _open(host, port, f"/api/runs/{run_id}/events")
    marker = b"event: " + kind + b"\n"
    tail = b""
    pending = b""
    try:
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            now = time.monotonic_ns()
            data = tail + chunk
            n = data.count(marker)
            if n:
                if not stats.frames:
                    stats.first = now / 1e9
                stats.frames += n
                stats.last = now / 1e9
            tail = data[-(len(marker) - 1):]  # a marker cut in two is counted once, next time
            if probe:
                pending += chunk
                frames = pending.split(b"\n\n")
                pending = frames.pop()
                for frame in frames:
                    at = frame.find(b"data: ")
                    if at < 0 or marker not in frame and b"run.start" not in frame:
                        continue
                    # the body is chunked: a frame may carry a chunk-size line; find the JSON
                    body = frame[at + 6:].split(b"\r\n", 1)[0]
                    try:
                        event = json.loads(body)
                    except ValueError:
                        continue
                    if event["kind"] == "run.start":
                        t0 = event["data"]["t0_monotonic_ns"]
                    elif t0 is not None:
                        stats.delays.append(now / 1e9 - (t0 / 1e9 + event["t"]))
            if b"event: run.end" in data:
                break
    finally:
        writer.close()
    return stats


async def many_clients(host: str, port: int, run_id: str, kind: bytes, clients: int,
                       probes: int) -> list[ClientStats]:
    tasks = [sse_client(host, port, run_id, kind, probe=i < probes) for i in range(clients)]
    return list(await asyncio.gather(*tasks))


def run_clients(host: str, port: int, run_id: str, kind: str, clients: int, probes: int,
                out: object) -> None:
    """Entry point of the client process: results go back through `out` (a Connection)."""
    results = asyncio.run(many_clients(host, port, run_id, kind.encode(), clients, probes))
    out.send([(r.frames, r.first, r.last, r.delays) for r in results])  # type: ignore[attr-defined]
