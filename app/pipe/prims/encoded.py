"""An instrumented object's events as JSON text, their constant part made once.

Runs in every process of a traced run. Standard library only.

The hot operations (an uncontended acquire and release, a put, a get) send their data as
text (app.pipe.reporter's emit_json) built from a head made when the object is first used
in a process, `{"obj":"ID"` and the fields that never change, so that an operation only
formats its numbers and its item. The text is what the reporter's data_json writes for the
same fields in the same order (no spaces, non-ASCII kept, strings escaped by the same
encode_basestring), so an event reads the same whichever way it was sent.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=repr).encode

string: Any = encode_basestring  # a str as its JSON text


def head(obj: str, **fields: Any) -> str:
    """`{"obj":ID` and `fields` in order, without the closing brace: the head of a text."""
    parts = [f'{{"obj":{string(obj)}']
    parts.extend(f",{string(key)}:{_encode(value)}" for key, value in fields.items())
    return "".join(parts)


def number(value: float | None) -> str:
    """An int, a finite float or None as JSON (what json writes for it)."""
    return "null" if value is None else repr(value)
