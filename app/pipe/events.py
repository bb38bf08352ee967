"""The event: its one shape, its stamped form, and its two encodings on the wire.

Runs in the server (and in `procscope run`). Every event of a run has the same shape

    {"run", "seq", "t", "kind", "pid", "ppid", "cpu", "proc", "data"}   (docs/api.md)

Processes of a run write it (without run, seq and t) through app.pipe.reporter and
app.pipe.framing; the server's own events (run.start, the sampler's, reaping, run.end) are
made here by `server_event`. The relay stamps each one exactly once (`stamp`): it gets
its run, its seq and its t, and becomes an `Event` whose SSE frame is encoded once, for
every client; NDJSON is a slice of the same bytes.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from procscope.pipe.framing import to_json

Format = Literal["sse", "ndjson"]

# Kinds whose data the relay and the run manager read; the rest pass through as the
# bytes their process wrote.
DECODED = frozenset({"run.start", "run.result", "run.error", "run.end",
                     "proc.start", "proc.exit", "proc.reap"})
# Past a run's event cap these kinds are still kept: without them a run has no shape.
ALWAYS_KEPT = DECODED | {"error"}


def server_event(kind: str, data: dict[str, Any] | None = None, *, t_ns: int,
                 pid: int | None = None, ppid: int | None = None, cpu: int | None = None,
                 proc: str | None = None) -> dict[str, Any]:
    """An event made on the server's side, before the relay stamps it (`t_ns`: monotonic)."""
    return {"kind": kind, "t": t_ns, "pid": pid, "ppid": ppid, "cpu": cpu, "proc": proc,
            "data": data if data is not None else {}}


SERVER_PROC = "procscope"  # how the server names itself on the events it makes


def reaped_by_server(child: int, exitcode: int | None, t_ns: int) -> dict[str, Any]:
    """The server collected a child of the run's (the main, or an orphan it adopted)."""
    return server_event("proc.reap", {"child": child, "exitcode": exitcode, "by": "server"},
                        t_ns=t_ns, pid=os.getpid(), proc=SERVER_PROC)


def body_of(event: dict[str, Any]) -> bytes:
    """A server-side event's JSON as a process would have written it: "kind" first, no t."""
    rest = {k: v for k, v in event.items() if k not in ("kind", "t")}
    return to_json({"kind": event["kind"], **rest}).encode()


def stamp(run_id: str, seq: int, t: float, kind: str, body: bytes) -> Event:
    """The stamped event: run, seq and t spliced in front of the body's own keys.

    The relay's hot path (once per event): the whole SSE frame in one formatting, the same
    bytes as Event(seq, kind, json) makes in two (~0.6 µs of ~1.5 less).
    """
    kind_b = _kind_bytes.get(kind)
    if kind_b is None:
        kind_b = kind.encode()
        if len(_kind_bytes) < 1024:  # lessons add kinds freely: the cache stays bounded
            _kind_bytes[kind] = kind_b
    seq_b = b"%d" % seq
    event = Event.__new__(Event)
    event.seq, event.kind, event._obj = seq, kind, None
    event.frame = b'id: %s\nevent: %s\ndata: {"run":"%s","seq":%s,"t":%r,%s\n\n' % (
        seq_b, kind_b, run_id.encode(), seq_b, t, body[1:])
    event.data_at = _HEAD_SIZE + len(seq_b) + len(kind_b)
    return event


_kind_bytes: dict[str, bytes] = {}
_HEAD_SIZE = len(b"id: \nevent: \ndata: ")


def event_head(run_id: str, kind: str) -> tuple[str, bytes, bool, int]:
    """What every frame `stamp` makes of a kind in a run has between its seq and its seq
    again, for the relay's inlined stamp (app.pipe.relay): (kind, those bytes, decoded?, where
    the JSON starts less the seq's digits)."""
    kind_b = kind.encode()
    head = b'\nevent: %s\ndata: {"run":"%s","seq":' % (kind_b, run_id.encode())
    return kind, head, kind in DECODED, _HEAD_SIZE + len(kind_b)


class Event:
    """One stamped event: its SSE frame, encoded once; decoded only if someone asks."""

    __slots__ = ("seq", "kind", "frame", "data_at", "_obj")

    def __init__(self, seq: int, kind: str, json_bytes: bytes) -> None:
        self.seq = seq
        self.kind = kind
        head = b"id: %d\nevent: %s\ndata: " % (seq, kind.encode())
        self.frame = head + json_bytes + b"\n\n"
        self.data_at = len(head)
        self._obj: dict[str, Any] | None = None

    @property
    def json(self) -> bytes:
        return self.frame[self.data_at:-2]

    @property
    def ndjson(self) -> bytes:
        return ndjson_line(self.frame, self.data_at)

    @property
    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = json.loads(self.json)
        return self._obj


def ndjson_line(frame: bytes, data_at: int) -> bytes:
    """An event's NDJSON line, cut from its SSE frame (one of the two newlines kept)."""
    return frame[data_at:-1]


# --- frames that are not events of a run's log ------------------------------------------

RETRY_MS = 2000
RETRY_FRAME = f"retry: {RETRY_MS}\n\n".encode()
_STOPPING = json.dumps({"kind": "server.stopping", "data": {
    "detail": "the server is stopping; its runs are being cancelled"}})


def server_stopping(fmt: Format) -> bytes:
    """The last thing a stream says when the server stops before the run ends.

    In SSE without an `id:`: it is not part of the run's log, and a reconnect resumes
    after the last real event.
    """
    if fmt == "sse":
        return f"event: server.stopping\ndata: {_STOPPING}\n\n".encode()
    return _STOPPING.encode() + b"\n"
