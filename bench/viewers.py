"""Many SSE viewers of one run, cheap enough that they are not what a benchmark measures.

Runs in viewer processes of their own (started by `start`, spawn context), never in the
server nor in the bench process. Each viewer process holds many raw non-blocking sockets in
one `select.epoll` loop, with no asyncio and no HTTP library: per readable socket one
`recv_into()` a buffer the process reuses and three `bytearray.count()` calls (memchr
speed, no copy), so a counter costs ~10-15 µs per received chunk here, most of it the
kernel's, whatever the number of frames in it; counters read every 50 ms, so one chunk
holds a few of the server's sends. Only a sample of viewers (the probes,
~20, in a process of their own so they are not queued behind the counters) split frames and
decode the `bench.tick` ones to time them:

    delay = CLOCK_MONOTONIC at the recv() that completed the frame - (t0 + the event's t)

where t0 is the run's `run.start` `t0_monotonic_ns` and `t` the event's seconds since it,
stamped from the emitting process's `time.monotonic_ns()` at `emit()`. CLOCK_MONOTONIC is
system-wide on Linux, so both ends read the same clock. The probes parse the frames by hand
(split on the blank line, `json.loads` of the `data:` line): no SSE client library is
installed here, and a general one (httpx + a parser) costs 10x more per event, which on 2
cores would be CPU taken from the server we measure.

Why counting is exact: an SSE frame is `id: N\\nevent: KIND\\ndata: ...\\n\\n`, so every
frame but one that has no id holds `\\nevent: ` once; a marker cut by a `recv()` boundary is
found in the joint of the previous chunk's tail and this chunk's head (neither alone can
hold a whole marker).

Each process talks to the bench through a Connection: ("started", 0) once imported; then
it gets (path, t0) and connects; ("ready", n) once all its viewers have their response
headers; ("mark", monotonic s, frames so far) for each "mark" asked (the ends of a steady
window); ("done", [ViewerResult, ...]) when every viewer has read its `run.end` (or at the
deadline). The bench reads the CPU of these processes from /proc
(`cpu_seconds`), so a reader can see the viewers are not the limit.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import select
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

FRAME = b"\nevent: "
TICK = b"\nevent: bench.tick\n"
END = b"\nevent: run.end\n"
KEEP = len(TICK) - 1  # bytes of a chunk's end kept for the next one's joint


@dataclass
class ViewerResult:
    """What one viewer saw: all frames, bytes, when, and (probes only) each tick's timing."""

    frames: int = 0
    ticks: int = 0  # bench.tick frames
    last_tick: float = 0.0  # monotonic s of the recv() that completed the last one
    bytes: int = 0
    reads: int = 0
    connected: float = 0.0  # monotonic s when the response headers came
    first: float = 0.0
    last: float = 0.0
    ended: bool = False
    # probes: (emitted at, monotonic s; delay, s) per timed frame (bench.tick, or a lesson's)
    emitted: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)


def _joint(tail: bytes, head: bytes, marker: bytes) -> bytes:
    k = len(marker) - 1
    return tail[-k:] + head[:k]


class _Viewer:
    __slots__ = ("sock", "probe", "tail", "pending", "t0", "result", "timed")

    def __init__(self, sock: socket.socket, probe: bool, t0: float | None = None,
                 timed: tuple[bytes, ...] = (b'"kind":"bench.tick"',)) -> None:
        self.sock = sock
        self.probe = probe
        self.timed = timed  # (probes) the frames timed: their JSON's `"kind":"..."`
        self.tail = b""
        self.pending = b""
        self.t0 = t0  # the run's t0, monotonic s: else read from its run.start frame
        self.result = ViewerResult()

    def take(self, buf: bytearray, start: int, end: int, now: float) -> None:
        """Count the frames in buf[start:end] (one recv), without copying it."""
        r = self.result
        # A marker cut by the recv() boundary is in the joint of the last bytes before and
        # the first after, each side one byte shorter than the marker (so a marker wholly
        # on one side is never counted twice).
        head = bytes(buf[start:min(end, start + KEEP)])
        n = buf.count(FRAME, start, end) + _joint(self.tail, head, FRAME).count(FRAME)
        if n:
            if not r.frames:
                r.first = now
            r.frames += n
            r.last = now
        # (a tick's or the end's marker may end in a chunk that holds no FRAME marker)
        ticks = buf.count(TICK, start, end) + _joint(self.tail, head, TICK).count(TICK)
        if ticks:
            r.ticks += ticks
            r.last_tick = now
        if buf.find(END, start, end) >= 0 or END in _joint(self.tail, head, END):
            r.ended = True
        r.bytes += end - start
        r.reads += 1
        self.tail = (self.tail + bytes(buf[max(start, end - KEEP):end]))[-KEEP:]
        if self.probe:
            self._time(bytes(buf[start:end]), now)

    def _time(self, chunk: bytes, now: float) -> None:
        frames = (self.pending + chunk).split(b"\n\n")
        self.pending = frames.pop()
        r = self.result
        for frame in frames:
            at = frame.find(b"\ndata: ")
            if at < 0:
                continue
            # a frame may begin with the chunked encoding's size line: the JSON is the rest
            # of the data line
            line = frame[at + 7:].split(b"\n", 1)[0]
            if self.t0 is None:
                if b'"kind":"run.start"' in line:
                    self.t0 = json.loads(line)["data"]["t0_monotonic_ns"] / 1e9
                continue
            if not any(kind in line for kind in self.timed):
                continue
            emitted = self.t0 + json.loads(line)["t"]
            r.emitted.append(emitted)
            r.delays.append(now - emitted)


def _viewer_main(host: str, port: int, count: int, probes: int, limit: float, pace: float,
                 out: Connection) -> None:
    """Runs in a viewer process: `count` viewers of the path the bench then sends (with
    the run's t0, or None), the first `probes` timing; between two passes over the
    readable sockets it sleeps `pace` s (0 for probes)."""
    out.send(("started", 0))
    path, t0, kinds = out.recv()
    timed = tuple(b'"kind":"%s"' % kind.encode() for kind in kinds)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    deadline = time.monotonic() + limit
    poller = select.epoll()
    poller.register(out.fileno(), select.EPOLLIN)  # "mark" from the bench
    viewers: dict[int, _Viewer] = {}
    done: list[_Viewer] = []
    for i in range(count):
        sock = socket.create_connection((host, port), timeout=10)
        # room for `pace` s of a fast stream, so pacing never throttles the server
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        sock.sendall(request)
        sock.setblocking(False)
        viewers[sock.fileno()] = _Viewer(sock, probe=i < probes, t0=t0, timed=timed)
        poller.register(sock.fileno(), select.EPOLLIN)
    # One buffer for every socket of the process, read one at a time: a fresh 256 KiB
    # bytes per recv() would be an mmap and page faults each time (measured: ~25 µs).
    buf = bytearray(1 << 18)
    waiting = count
    if not waiting:
        out.send(("ready", 0))
    while viewers and time.monotonic() < deadline:
        for fd, _ in poller.poll(0.5):
            if fd == out.fileno():
                out.recv()
                frames = sum(v.result.frames for v in viewers.values())
                frames += sum(v.result.frames for v in done)
                out.send(("mark", time.monotonic(), frames))
                continue
            v = viewers[fd]
            try:
                got = v.sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError:
                got = 0
            now = time.monotonic()
            start = 0
            if got and not v.result.connected:
                start = buf.find(b"\r\n\r\n", 0, got) + 4  # past the response headers
                v.result.connected = now
                waiting -= 1
                if not waiting:
                    out.send(("ready", count))
            if got > start:
                v.take(buf, start, got, now)
            if not got or v.result.ended:
                poller.unregister(fd)
                v.sock.close()
                done.append(viewers.pop(fd))
        if pace and not waiting:
            # A counter's latency is not measured: letting a few sends pile up in the
            # socket makes one recv() take them all (~13 µs a recv here, whatever its size).
            time.sleep(pace)
    for v in viewers.values():  # the deadline came first: report what they have
        v.sock.close()
        done.append(v)
    poller.close()
    if waiting:
        out.send(("ready", count - waiting))
    out.send(("done", [v.result for v in done]))
    while out.poll():  # a mark asked as we ended
        out.recv()
    out.close()


@dataclass
class Viewers:
    """Viewer processes reading one stream; `wait_ready`, then `results`."""

    procs: list[Any]
    pipes: list[Connection]
    ready: int = 0
    _done: dict[int, list[ViewerResult]] = field(default_factory=dict)  # read by `mark`

    def connect(self, path: str, t0: float | None = None,
                timed: tuple[str, ...] = ("bench.tick",)) -> None:
        """Every viewer opens `path`. `t0`: the run's start (monotonic s), for a path that
        does not begin at run.start (`?after=SEQ`); `timed`: the kinds the probes time."""
        for pipe in self.pipes:
            pipe.send((path, t0, timed))

    @property
    def pids(self) -> list[int]:
        return [int(p.pid) for p in self.procs]

    def wait_ready(self, limit: float) -> int:
        """Block until every process has all its viewers connected (or `limit` s)."""
        deadline = time.monotonic() + limit
        for pipe in self.pipes:
            if pipe.poll(max(0.0, deadline - time.monotonic())):
                tag, n = pipe.recv()
                assert tag == "ready", tag
                self.ready += n
        return self.ready

    def mark(self) -> list[tuple[float, int]]:
        """(monotonic s, frames read so far by all its viewers) of each process, now."""
        for i, pipe in enumerate(self.pipes):
            if i not in self._done:
                # it may have ended: its "done" is then waiting in the pipe
                with contextlib.suppress(OSError):
                    pipe.send("mark")
        marks = []
        for i, pipe in enumerate(self.pipes):
            while i not in self._done:
                if not pipe.poll(30):
                    raise RuntimeError("a viewer process did not answer a mark")
                message = pipe.recv()
                if message[0] == "mark":
                    marks.append((message[1], message[2]))
                    break
                if message[0] == "done":
                    self._done[i] = message[1]
            else:
                marks.append((time.monotonic(), sum(r.frames for r in self._done[i])))
        return marks

    def results(self, limit: float) -> tuple[list[ViewerResult], list[ViewerResult]]:
        """(probes, counters): every viewer's result, once all have read run.end."""
        deadline = time.monotonic() + limit
        out: list[list[ViewerResult]] = []
        for i, pipe in enumerate(self.pipes):
            got: list[ViewerResult] = self._done.get(i, [])
            while i not in self._done and pipe.poll(max(0.0, deadline - time.monotonic())):
                try:
                    tag, value = pipe.recv()
                except EOFError:
                    break
                if tag == "done":
                    got = value
                    break
            out.append(got)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():  # past its own deadline: should not happen; say so
                print(f"viewer process {proc.pid} still alive after its deadline: killed")
                proc.kill()
                proc.join()
        return out[0], [r for rs in out[1:] for r in rs]


def start(host: str, port: int, viewers: int, probes: int = 20, counter_processes: int = 0,
          limit: float = 120.0, pace: float = 0.05) -> Viewers:
    """Start the processes of `viewers` viewers, which connect on `Viewers.connect(path)`:
    `probes` of them (at most) in one process that times frames, the rest counting in
    `counter_processes` processes (0: one per 250), reading every `pace` s. Each process
    is up (imports done) when this returns, so connecting takes milliseconds."""
    probes = min(probes, viewers)
    counters = viewers - probes
    if not counter_processes:
        counter_processes = min(4, -(-counters // 250))
    ctx = multiprocessing.get_context("spawn")
    sizes = [probes] + [counters // counter_processes + (i < counters % counter_processes)
                        for i in range(counter_processes)]
    procs, pipes = [], []
    for i, size in enumerate(sizes):
        here, there = ctx.Pipe(duplex=True)  # both ways: path, marks
        proc = ctx.Process(target=_viewer_main, name=f"bench-viewers-{i}",
                           args=(host, port, size, size if i == 0 else 0, limit,
                                 0.0 if i == 0 else pace, there))
        proc.start()
        there.close()
        procs.append(proc)
        pipes.append(here)
    for here in pipes:
        if not here.poll(60) or here.recv()[0] != "started":
            raise RuntimeError("a viewer process did not start")
    return Viewers(procs, pipes)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds these processes have run, all their threads (not their children).

    From each thread's /proc/<pid>/task/<tid>/schedstat (ns on a CPU, exact), not
    /proc/<pid>/stat's utime + stime, which count 10 ms ticks: over a 5 s window a bare
    sender at 0.05 of a core is 25 ticks, a 4 % error. A thread that ended in the window
    drops out of the sum (the server's threads live as long as it does); a process that is
    gone counts 0."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9
