"""The primitives' rate budget: events one by one up to a rate, counted past it.

Runs in every process of a traced run (armed by app.pipe.prims). Standard library only.

Each process may send RATE events a second from its instrumented objects, in bursts of up
to BURST (a token bucket, refilled from the time since its last refill when found empty,
so that the clock is read only then). Past it an event is counted, not sent: per object
and kind, sent as one `prims.tally` at most every TALLY_EVERY seconds (when the object is
used next) and at the process's exit. A program is never slowed beyond the budget
silently: the page shows the tally.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

Emit = Callable[..., None]
EmitJson = Callable[[str, str], None]  # (kind, the data's JSON text): reporter.emit_json

RATE = 2000  # events a second per process, after the first BURST
BURST = 5000
TALLY_EVERY = 0.1  # seconds: prims.tally at most this often per object

_monotonic = time.monotonic


def _no_emit(kind: str, **data: Any) -> None:
    return None


def _no_emit_json(kind: str, data: str) -> None:
    return None


emit: Emit = _no_emit  # the reporter's, once app.pipe.prims is installed
emit_json: EmitJson = _no_emit_json  # the same, for data already JSON (app.pipe.prims.encoded)
_tokens = BURST
_refilled = _monotonic()
# obj -> [since, {kind: n}]: what was counted and not sent, since when
_counted: dict[str, list[Any]] = {}
_last_flush = 0.0
# obj -> what hands over (and zeroes) what a lock counted on its own, and what sends its
# events one by one again
_drains: dict[str, tuple[Callable[[], dict[str, int]], Callable[[], None]]] = {}


def set_emit(reporter_emit: Emit, reporter_emit_json: EmitJson) -> None:
    global emit, emit_json
    emit, emit_json = reporter_emit, reporter_emit_json


def take() -> bool:
    """One event's token: True if the event may be sent now."""
    global _tokens
    if _drains and _monotonic() - _last_flush >= TALLY_EVERY:
        flush()  # locks counting on their own: their tally, and maybe their events again
    if _tokens > 0:
        _tokens -= 1
        return True
    return _refill()


def _refill() -> bool:
    global _tokens, _refilled
    now = _monotonic()
    earned = int((now - _refilled) * RATE)
    if earned <= 0:
        return False
    _tokens = min(BURST, earned) - 1
    _refilled = now
    return True


def report(kind: str, obj: str, **data: Any) -> None:
    """Send one event of an instrumented object, or count it past the budget."""
    if take():
        emit(kind, obj=obj, **data)
    else:
        count(obj, kind)


def report_json(kind: str, obj: str, data: str) -> None:
    """report() of data already JSON (app.pipe.prims.encoded): the hot operations'."""
    if take():
        emit_json(kind, data)
    else:
        count(obj, kind)


def send(kind: str, key: str, **data: Any) -> None:
    """Send one event as it is (a pool's task.*: `pool`, no `obj`), or count it under
    `key` past the budget."""
    if take():
        emit(kind, **data)
    else:
        count(key, kind)


def count(obj: str, kind: str, n: int = 1) -> None:
    counted = _counted.get(obj)
    now = _monotonic()
    if counted is None:
        counted = _counted[obj] = [now, {}]
    kinds = counted[1]
    kinds[kind] = kinds.get(kind, 0) + n
    if now - _last_flush >= TALLY_EVERY:
        flush()


def counting(obj: str, drain: Callable[[], dict[str, int]],
             resume: Callable[[], None]) -> None:
    """A lock counts on its own from now on: each flush asks it what it counted (`drain`),
    and once the budget has room again, `resume` has it send its events again."""
    _drains[obj] = (drain, resume)
    if obj not in _counted:
        _counted[obj] = [_monotonic(), {}]


def _merge(obj: str, counts: dict[str, int]) -> None:
    if not counts:
        return
    counted = _counted.get(obj)
    if counted is None:
        counted = _counted[obj] = [_monotonic(), {}]
    kinds = counted[1]
    for kind, n in counts.items():
        kinds[kind] = kinds.get(kind, 0) + n


def flush() -> None:
    """Every count as a prims.tally (at most every TALLY_EVERY s, and at exit)."""
    global _last_flush
    _last_flush = _monotonic()
    room = _tokens > 0 or _refill_quietly()
    for obj, (drain, resume) in list(_drains.items()):
        _merge(obj, drain())
        if room:
            del _drains[obj]
            resume()
    for obj in list(_counted):
        _flush_one(obj)


def _refill_quietly() -> bool:
    """_refill without spending a token."""
    global _tokens
    if _refill():
        _tokens += 1
        return True
    return False


def _flush_one(obj: str) -> None:
    counted = _counted.get(obj)
    if counted is None:
        return
    since, kinds = counted
    kinds = {kind: n for kind, n in kinds.items() if n}
    if obj in _drains:
        counted[:] = [_monotonic(), {}]  # still counting: a new stretch begins
    else:
        del _counted[obj]
    if kinds:
        emit("prims.tally", obj=obj, kinds=kinds, since=round(_monotonic() - since, 6))


def _reset_in_child() -> None:
    """A fork child starts with a full budget and nothing counted (the counts were the
    parent's); its locks' own counters are zeroed by their drains."""
    global _tokens, _refilled, _last_flush
    _tokens = BURST
    _refilled = _last_flush = _monotonic()
    for drain, _ in _drains.values():
        drain()
    for counted in _counted.values():
        counted[:] = [_refilled, {}]


os.register_at_fork(after_in_child=_reset_in_child)
