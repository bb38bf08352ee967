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


# The one layout of an SSE frame of a run's log: `id:` the seq, then the head (its kind, and
# where a stamped event's JSON begins), then the rest of the JSON. Every frame of a log is
# made from it once (Event, stamp, the relay's inlined stamp through event_head and STAMPED)
# and sent, stored in memory and read back as those bytes.
FRAME = b"id: %s%s%s\n\n"  # seq, head_of(kind, start), the rest of the JSON
STAMPED = FRAME.replace(b"%s\n\n", b'%s,"t":%s,%s\n\n')  # ... the rest: seq, t, body's keys


def head_of(kind: bytes, start: bytes = b"") -> bytes:
    """A frame's bytes between its seq and the JSON's `start` included."""
    return b"\nevent: %s\ndata: %s" % (kind, start)


_HEAD_SIZE = len(FRAME % (b"", head_of(b""), b"")) - 2  # a frame's bytes but seq, kind, JSON


def stamp(run_id: str, seq: int, t: float, kind: str, body: bytes) -> Event:
    """The stamped event: run, seq and t spliced in front of the body's own keys, framed in
    one formatting (the relay's inlined stamp makes the same bytes, app.pipe.relay)."""
    _, head, _, data_at = event_head(run_id, kind)
    seq_b = b"%d" % seq
    event = Event.__new__(Event)
    event.seq, event.kind, event._obj = seq, kind, None
    event.frame = STAMPED % (seq_b, head, seq_b, b"%r" % t, body[1:])
    event.data_at = data_at + len(seq_b)
    return event


def event_head(run_id: str, kind: str) -> tuple[str, bytes, bool, int]:
    """What every frame of a kind in a run has between its seq and its seq again (in STAMPED),
    for stamp and the relay's inlined stamp, which caches it per run and kind: (kind, those
    bytes, decoded?, where the JSON starts less the seq's digits)."""
    kind_b = kind.encode()
    head = head_of(kind_b, b'{"run":"%s","seq":' % run_id.encode())
    return kind, head, kind in DECODED, _HEAD_SIZE + len(kind_b)


class Event:
    """One event of a log: its SSE frame, encoded once; decoded only if someone asks."""

    __slots__ = ("seq", "kind", "frame", "data_at", "_obj")

    def __init__(self, seq: int, kind: str, json_bytes: bytes) -> None:
        """The event whose JSON is `json_bytes` (as stamped, or a classroom frame's)."""
        self.seq = seq
        self.kind = kind
        kind_b = kind.encode()
        self.frame = FRAME % (b"%d" % seq, head_of(kind_b), json_bytes)
        self.data_at = len(self.frame) - len(json_bytes) - 2
        self._obj: dict[str, Any] | None = None

    @property
    def json(self) -> bytes:
        return frame_json(self.frame, self.data_at)

    @property
    def ndjson(self) -> bytes:
        return ndjson_line(self.frame, self.data_at)

    @property
    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = json.loads(self.json)
        return self._obj


def frame_kind(frame: bytes) -> str:
    """The kind of a frame FRAME made, read without decoding its JSON."""
    start = frame.index(b"\nevent: ") + 8
    return frame[start:frame.index(b"\n", start)].decode()


def frame_json(frame: bytes, data_at: int) -> bytes:
    """An event's JSON, cut from its SSE frame."""
    return frame[data_at:-2]


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
