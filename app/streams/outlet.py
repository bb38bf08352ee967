"""Where a run stream's bytes go: straight into the client's connection, or through ASGI.

Runs in the server, on its event loop. A run's stream (app.streams.stream.RunStream) starts its
response through ASGI like any route (headers, the Guard's cookie), then hands its body's
chunks to an outlet:

- `TransportOutlet`, under uvicorn's httptools protocol (what `procscope` runs): the chunk
  is written to the connection's transport, framed for HTTP's chunked encoding once per
  flush for every viewer (`Chunk.framed`), and the end of the body goes back through ASGI,
  so uvicorn's keep-alive and pipelining see a complete response.
- `AsgiOutlet` anywhere else (another ASGI server, uvicorn's h11 protocol, a wrapped
  `send`): the same chunks through `send()`, one sender task per client.

Why past ASGI, and past sse-starlette's EventSourceResponse: this is the one module that
reaches into uvicorn's objects (the httptools protocol's cycle: its transport, flow control
and chunked framing; `keep_server_send` keeps uvicorn's own `send` in the scope to find
it). sse-starlette would be kept if it cost at most 10 % more server CPU per delivered
event than this; ASGI `send()` alone costs more than that already (1.3-1.7x this
outlet's at 200 and 500 viewers, sse-starlette 1.1-3.3x). Per viewer and flush,
ASGI adds Starlette's and the middlewares' send wrappers and uvicorn's framing and copy
of the chunk; sse-starlette adds its anyio cancel scope (send timeout) per send besides.
`python -m bench.stream_paths` measures the three ways in one invocation; ARCHITECTURE.md
(decision 7) has the figures.

What the outlet must keep: a client that stops reading is never waited for by anyone
else. `writable()` is False once the transport has more queued than its high-water mark
(uvicorn's flow control says so); the stream then stops handing it chunks, and its own
coroutine waits for it (`drain`) at most the send timeout before dropping it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from starlette.types import Scope, Send

RAW_SEND = "procscope.server_send"  # scope key: the ASGI server's own send
ASGI_PENDING_MAX = 1 << 16  # bytes an AsgiOutlet holds before it counts as not writable


class Chunk:
    """Bytes for every client at one cursor; their HTTP chunked framing is built once."""

    __slots__ = ("body", "_framed")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._framed: bytes | None = None

    @property
    def framed(self) -> bytes:
        if self._framed is None:
            self._framed = b"%x\r\n%s\r\n" % (len(self.body), self.body)
        return self._framed


class Outlet(Protocol):
    def gone(self) -> bool:
        """The client's connection is closed: nothing more reaches it."""
        ...

    def writable(self) -> bool:
        """A write now would not queue past the connection's high-water mark."""
        ...

    def write(self, chunk: Chunk) -> None:
        """Queue the chunk; never waits (call only when writable())."""
        ...

    async def drain(self) -> None:
        """Return once writable() or gone() (the caller bounds it by the send timeout)."""
        ...

    async def finish(self, last: bytes) -> None:
        """The last bytes and the end of the body, through ASGI."""
        ...

    def drop(self) -> None:
        """Cut the connection of a client that stopped reading: its queue goes with it."""
        ...


class TransportOutlet:
    """Writes to the connection of uvicorn's httptools RequestResponseCycle."""

    def __init__(self, cycle: Any, send: Send) -> None:
        self._cycle = cycle
        self._transport = cycle.transport
        self._flow = cycle.flow
        self._chunked = bool(cycle.chunked_encoding)
        self._send = send

    def gone(self) -> bool:
        return bool(self._cycle.disconnected or self._transport.is_closing())

    def writable(self) -> bool:
        return not (self._flow.write_paused or self._cycle.disconnected
                    or self._transport.is_closing())

    def write(self, chunk: Chunk) -> None:
        self._transport.write(chunk.framed if self._chunked else chunk.body)

    async def drain(self) -> None:
        # uvicorn's flow control: set again when the buffer drains, and on connection_lost.
        await self._flow.drain()

    async def finish(self, last: bytes) -> None:
        await self._send({"type": "http.response.body", "body": last, "more_body": False})

    def drop(self) -> None:
        # abort(), not close(): close() would keep the socket until its queue drains, which
        # it never will; uvicorn then sees a disconnected client, not an unfinished answer.
        self._transport.abort()


class AsgiOutlet:
    """The same through `send()`: one sender task per client, started on its first chunk."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: list[bytes] = []
        self._size = 0
        self._sender: asyncio.Task[None] | None = None
        self._failed = False
        self._drained = asyncio.Event()
        self._drained.set()

    def gone(self) -> bool:
        return self._failed

    def writable(self) -> bool:
        return not self._failed and self._size < ASGI_PENDING_MAX

    def write(self, chunk: Chunk) -> None:
        self._pending.append(chunk.body)
        self._size += len(chunk.body)
        self._drained.clear()
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send_pending())

    async def _send_pending(self) -> None:
        try:
            while self._pending:
                body = b"".join(self._pending)
                self._pending.clear()
                await self._send({"type": "http.response.body", "body": body,
                                  "more_body": True})
                self._size -= len(body)
        except OSError:
            self._failed = True  # the connection is gone; the stream sees gone()
        finally:
            self._sender = None
            self._drained.set()

    async def drain(self) -> None:
        while self._size >= ASGI_PENDING_MAX and not self._failed:
            await self._drained.wait()

    async def finish(self, last: bytes) -> None:
        while self._sender is not None:
            await self._drained.wait()
        await self._send({"type": "http.response.body", "body": last, "more_body": False})

    def drop(self) -> None:
        self._failed = True
        if self._sender is not None:
            self._sender.cancel()


def keep_server_send(scope: Scope, send: Send) -> None:
    """Called with the ASGI server's own `send`, before any middleware wraps it: a stream's
    outlet_for finds uvicorn's cycle behind it."""
    if scope["type"] == "http":
        scope[RAW_SEND] = send


def outlet_for(scope: Scope, send: Send) -> Outlet:
    """The outlet of a response whose start has been sent (uvicorn decides the framing then)."""
    cycle = getattr(scope.get(RAW_SEND), "__self__", None)
    if (type(cycle).__module__ == "uvicorn.protocols.http.httptools_impl"
            and all(hasattr(cycle, a) for a in ("transport", "flow", "disconnected",
                                                 "chunked_encoding"))
            and scope.get("method") == "GET"):
        return TransportOutlet(cycle, send)
    return AsgiOutlet(send)
