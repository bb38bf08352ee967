"""The run stream's ways to its viewers' sockets, compared: server CPU per delivered event.

Runs in the bench process: `python -m bench.stream_paths [--viewers 200 500] [--seconds 5]`.
Three servers, one after the other in the same invocation, each the same procscope with
its run streams sent one way (bench.fanout's cases: a 1,000 events/s flood, N viewers):

- `transport`: what procscope does (app.streams.outlet.TransportOutlet): each flush's chunk
  framed once for HTTP, one `transport.write` per viewer.
- `asgi`: the same fanout, each viewer's chunks through ASGI `send()` (AsgiOutlet), as
  under any ASGI server: what using only uvicorn's public interface costs.
- `sse-starlette`: the same fanout, each viewer's chunks handed to sse-starlette's
  `EventSourceResponse` (which passes bytes through; its ping, disconnect watch and send
  timeout per viewer), the design card's path.

Printed: per path and N, server CPU per delivered event beyond one viewer's (µs), and each
path's figure over `transport`'s. `python -m bench.stream_paths --serve PATH ...` is the
server side (procscope's command line, its streams patched to PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator

from bench import fanout
from bench.server import BenchServer

PATHS = ("transport", "asgi", "sse-starlette")


def _serve(path: str, argv: list[str]) -> None:
    """procscope's server, its run streams sent `path`'s way."""
    from sse_starlette import EventSourceResponse
    from starlette.types import Receive, Scope, Send

    from procscope import cli
    from procscope.streams import stream
    from procscope.streams.fanout import Viewer
    from procscope.streams.outlet import AsgiOutlet, Chunk

    if path == "asgi":
        stream.outlet_for = lambda scope, send: AsgiOutlet(send)  # type: ignore[attr-defined]
    elif path == "sse-starlette":
        class QueueOutlet:
            """Chunks for sse-starlette's body iterator: a fanout writes, it sends."""

            def __init__(self) -> None:
                self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
                self.size = 0
                self.closed = False
                self.drained = asyncio.Event()

            def gone(self) -> bool:
                return self.closed

            def writable(self) -> bool:
                return not self.closed and self.size < 1 << 16

            def write(self, chunk: Chunk) -> None:
                self.size += len(chunk.body)
                self.queue.put_nowait(chunk.body)

            async def drain(self) -> None:
                while not self.writable() and not self.closed:
                    self.drained.clear()
                    await self.drained.wait()

            async def finish(self, last: bytes) -> None:
                self.queue.put_nowait(last)
                self.queue.put_nowait(None)

            def drop(self) -> None:
                self.closed = True
                self.queue.put_nowait(None)

        class SseStarletteStream(stream.RunStream):
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                outlet = QueueOutlet()
                viewer = Viewer(stream.start_cursor(self._log, self._after), outlet)
                fan = self._fanouts.get(self._log, self._fmt)

                async def body() -> AsyncIterator[bytes]:
                    task = asyncio.ensure_future(self._serve(fan, viewer, outlet, scope))
                    try:
                        while (item := await outlet.queue.get()) is not None:
                            outlet.size -= len(item)
                            outlet.drained.set()
                            yield item
                    finally:
                        viewer.gone = outlet.closed = True
                        task.cancel()
                        fan.unpark(viewer, "gone")
                        self._fanouts.release(fan)

                await EventSourceResponse(body(), ping=15, sep="\n",
                                          send_timeout=self._send_timeout,
                                          headers={"Cache-Control": "no-store"})(
                    scope, receive, send)

        stream.RunStream = SseStarletteStream  # type: ignore[misc]
    cli.main(argv)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.stream_paths", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    args = parser.parse_args()
    figures: dict[str, dict[int, float]] = {}
    flushes: dict[str, dict[int, float]] = {}
    for path in args.paths:
        command = ("-m", "bench.stream_paths", "--serve", path)
        with BenchServer("--max-streams", "2000", command=command) as server:
            cases = [fanout.case(server, n, args.seconds) for n in [1, *args.viewers]]
        for c in cases:
            print(f"{path:>13}: {fanout.line(c)}", flush=True)
        figures[path] = {c["viewers"]: fanout.per_event_us(cases[0], c) for c in cases[1:]}
        flushes[path] = {c["viewers"]: fanout.flush_of(c) * 1e3 for c in cases[1:]}
    # A path that costs more stretches the fanout's interval (fewer, larger sends: less CPU
    # per event, later deliveries): the interval is printed beside each figure.
    print(f"{'path':>13} " + " ".join(f"{f'{n} viewers':>21}" for n in args.viewers)
          + "   (server CPU µs per delivered event beyond one viewer's, x transport's,"
          " a send every ms)")
    for path, by_n in figures.items():
        base = figures.get("transport", by_n)
        print(f"{path:>13} " + " ".join(
            f"{by_n[n]:6.2f} {by_n[n] / base[n]:5.2f}x {flushes[path][n]:5.0f} ms"
            for n in args.viewers))


if __name__ == "__main__":
    main()
