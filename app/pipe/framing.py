"""The frame: how one event travels down a run's pipe, from a process to the relay.

Runs in every process of a run (app.pipe.reporter writes frames) and in the server (app.pipe.relay
reads them). Standard library only: every spawned child of a run imports it.

    frame = length (!i, of what follows) | monotonic ns (!q) | JSON, first key "kind"

A frame is at most PIPE_BUF bytes and is written with one os.write(), which Linux makes
atomic on a pipe: no lock is shared between processes, so a process killed at any instant
cannot wedge the others. The JSON begins with `{"kind":"` so that the relay can read the
kind without decoding the rest, and splice the run, seq and t in front of the bytes as
written (most events are never decoded nor re-encoded on their way to the browser).
"""

from __future__ import annotations

import json
import struct
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

PIPE_BUF = 4096
HEADER = struct.Struct("!i")  # the same length prefix as multiprocessing.connection
STAMP = struct.Struct("!q")  # then the event's time.monotonic_ns(), then its JSON
FRAME = struct.Struct("!iq")  # the two together
KIND_PREFIX = b'{"kind":"'
TRUNCATED_PREVIEW = 700  # characters of an oversized event's data kept in its place

to_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=repr).encode

# to_json's C encoder, made once instead of once per call (JSONEncoder.encode builds a new
# one each time, through two Python-level calls): ~0.35 µs an event's data instead of
# ~1.1 µs, and in a fresh fork child far fewer objects touched (each one a copy-on-write
# page fault). Without the circular-reference check (markers=None): a circular structure
# recurses until RecursionError, and data_json then asks to_json, whose check raises the
# ValueError it always did.
_encode_data: Any = (c_make_encoder(None, repr, encode_basestring, None, ":", ",", False,
                                    False, True) if c_make_encoder is not None else None)


def data_json(data: Any) -> str:
    """to_json(data), the same text, made cheaper (an event's data, on the hot path)."""
    if _encode_data is not None:
        try:
            return "".join(_encode_data(data, 0))
        except RecursionError:
            pass
    return to_json(data)


def encode_frame(t_ns: int, event: dict[str, Any]) -> bytes:
    """One event (a dict whose first key is "kind") as one frame that fits PIPE_BUF.

    Oversized data is replaced by a marked preview, never split: a frame is all or nothing.
    """
    body = to_json(event).encode("utf-8", "replace")
    if len(body) + FRAME.size > PIPE_BUF:
        preview = to_json(event.get("data"))[:TRUNCATED_PREVIEW]
        event = dict(event, data={"truncated": True, "bytes": len(body), "preview": preview})
        body = to_json(event).encode("utf-8", "replace")
    return FRAME.pack(len(body) + STAMP.size, t_ns) + body


def kind_of(body: bytes) -> str | None:
    """The kind of a frame's JSON body, read without decoding it; None if garbled."""
    if not body.startswith(KIND_PREFIX):
        return None
    end = body.find(b'"', len(KIND_PREFIX))
    if end < 0:
        return None
    return body[len(KIND_PREFIX):end].decode("utf-8", "replace")
