"""The physical floor of fan-out: one `send()` per viewer per flush, and nothing else.

Runs in a process of its own (started by `measure`). A bare blocking-socket server on a
free loopback port: it accepts N viewers (bench.viewers, the same clients that read the
real server), answers each with the same response headers, and every `flush` seconds sends
each of them the same chunk, one `sendall()` per viewer: the SSE frames a flush of the real
server would carry (as many as its measured events/s gives, each of its measured mean size),
in HTTP chunked encoding as uvicorn writes them. `flush` is the real server's, as its probes
saw it (sends a second to one viewer; the server's flush interval adapts to its load since
331c030), else FLUSH. Its CPU over the steady window, less the
1-viewer figure, divided by the extra deliveries, is the baseline of "server CPU per
delivered event beyond one viewer's".
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

from bench import viewers as viewers_mod
from procscope.streams.fanout import FLUSH_INTERVAL

FLUSH = FLUSH_INTERVAL  # s: the real server's shortest flush interval, when no probe saw one
HEADERS = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
           b"cache-control: no-store\r\ntransfer-encoding: chunked\r\n\r\n")


def _frame(seq: int, size: int) -> bytes:
    head = (f'id: {seq}\nevent: bench.tick\ndata: {{"run":"1","seq":{seq},"t":1.000000,'
            f'"kind":"bench.tick","pid":1,"ppid":1,"cpu":0,"proc":"worker-1","data":'
            '{"i":1,"pad":"').encode()
    tail = b'"}}\n\n'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def _chunk(frames: bytes) -> bytes:
    return b"%x\r\n" % len(frames) + frames + b"\r\n"


def _sender_main(viewers: int, events_per_s: float, frame_bytes: int, seconds: float,
                 flush: float, out: Connection) -> None:
    """Runs in the baseline's process: serve `viewers`, then send for `seconds`."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    out.send(listener.getsockname()[1])
    socks = []
    for _ in range(viewers):
        sock, _addr = listener.accept()
        sock.recv(4096)  # the GET
        sock.sendall(HEADERS)
        socks.append(sock)
    listener.close()
    start = _chunk(b'id: 1\nevent: run.start\ndata: {"kind":"run.start"}\n\n')
    for sock in socks:
        sock.sendall(start)
    out.send(time.monotonic())  # every viewer connected
    seq, due, owed = 1, time.monotonic(), 0.0
    end = due + seconds
    while due < end:
        owed += events_per_s * flush
        count, owed = int(owed), owed - int(owed)
        frames = b"".join(_frame(seq + i, frame_bytes) for i in range(count))
        seq += count
        chunk = _chunk(frames)
        for sock in socks:
            sock.sendall(chunk)
        due += flush
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    last = _chunk(b"id: %d\nevent: run.end\ndata: {}\n\n" % (seq + 1)) + b"0\r\n\r\n"
    for sock in socks:
        sock.sendall(last)
        sock.close()
    out.close()


def measure(viewers: int, events_per_s: float, frame_bytes: int, seconds: float,
            settle: float = 1.0, flush: float = FLUSH) -> dict[str, Any]:
    """The bare sender's CPU (cores) over `seconds` of steady sending to `viewers`."""
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe(duplex=False)
    sender = ctx.Process(target=_sender_main, name="bench-send-baseline",
                         args=(viewers, events_per_s, frame_bytes, settle + seconds + 0.5,
                               flush, there))
    sender.start()
    there.close()
    try:
        if not here.poll(30):
            raise RuntimeError("the baseline sender did not start")
        port = here.recv()
        clients = viewers_mod.start("127.0.0.1", port, viewers, probes=0,
                                    limit=settle + seconds + 60)
        clients.connect("/")
        if not here.poll(60):
            raise RuntimeError("the baseline sender's viewers did not all connect")
        ready = here.recv()
        time.sleep(max(0.0, ready + settle - time.monotonic()))  # the window's start
        pids = [int(sender.pid or 0)]
        cpu0, viewer_cpu0 = (viewers_mod.cpu_seconds(pids),
                             viewers_mod.cpu_seconds(clients.pids))
        m0, t0 = clients.mark(), time.monotonic()
        time.sleep(seconds)
        cpu1, viewer_cpu1 = (viewers_mod.cpu_seconds(pids),
                             viewers_mod.cpu_seconds(clients.pids))
        m1, t1 = clients.mark(), time.monotonic()
        _, counters = clients.results(settle + seconds + 60)
    finally:
        sender.join(30)
        if sender.is_alive():
            sender.kill()
            sender.join()
    return {"viewers": viewers, "events_per_s": events_per_s, "frame_bytes": frame_bytes,
            "flush_s": flush, "sender_cores": (cpu1 - cpu0) / (t1 - t0),
            "viewers_cores": (viewer_cpu1 - viewer_cpu0) / (t1 - t0),
            "delivered_per_s": sum(b[1] - a[1] for a, b in zip(m0, m1, strict=True)) / (t1 - t0),
            "complete": sum(r.ended for r in counters)}
