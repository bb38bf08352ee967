"""multiprocessing.queues instrumented: Queue, JoinableQueue, SimpleQueue.

Runs in every process of a traced run, patched in when multiprocessing.queues is imported
(app.pipe.prims.hook). Standard library only, and app.pipe.prims.

The classes' methods are replaced once; each asks its queue for its Info (carry.KEY in
its `__dict__`) and goes straight to the original for a queue multiprocessing made for
itself (a Pool's, an executor's). Queue's put and get take one path (_through): a blocking
put tries without blocking first, a blocking get looks whether it would block (its read
lock taken or its pipe empty: _readable); only then is the call a wait (`wait.start`, then
the blocking call, `wait.end`): the same outcome as one blocking call, reported only when
it had to wait. The put's and get's events are sent as text (app.pipe.prims.encoded).
"""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable
from queue import Empty, Full
from types import ModuleType
from typing import Any, NamedTuple

from procscope.pipe.prims import budget, carry, encoded, naming
from procscope.pipe.prims.carry import KEY
from procscope.pipe.prims.patching import wrap_init

_monotonic = time.monotonic


def _depth(queue: Any) -> int | None:
    try:
        return int(queue.qsize())
    except (NotImplementedError, OSError, AttributeError):  # pragma: no cover
        return None


def _waiting(oid: str, call: str, waits_for: str, blocking: Callable[[], Any],
             gave_up: type[Exception], outcome: str) -> Any:
    """A call that will block, between its wait.start and wait.end."""
    texts = _waits.get((oid, call)) or _wait_texts(oid, call, waits_for)
    budget.report_json("wait.start", oid, texts[0])
    started = _monotonic()
    try:
        result = blocking()
    except gave_up:
        budget.report("wait.end", oid, call=call, outcome=outcome,
                      waited=round(_monotonic() - started, 6))
        raise
    budget.report_json("wait.end", oid, f"{texts[1]}{round(_monotonic() - started, 6)!r}}}")
    return result


# (obj id, call) -> its wait.start's text, and its wait.end's up to the seconds waited
_waits: dict[tuple[str, str], tuple[str, str]] = {}


def _wait_texts(oid: str, call: str, waits_for: str) -> tuple[str, str]:
    texts = _waits[oid, call] = (encoded.head(oid, call=call, waits_for=waits_for) + "}",
                                 encoded.head(oid, call=call) + ',"waited":')
    return texts


def _readable(queue: Any) -> bool:
    """Whether a get() would not block now: the queue's read lock free and bytes in its
    pipe (one poll(2), not Connection.poll's selector, nor a get(False) raising Empty).
    Anything else (closed, not CPython's Queue inside): True, and the get itself says."""
    try:
        rlock = queue._rlock
        if not rlock.acquire(False):
            return False
        try:
            poller = select.poll()
            poller.register(queue._reader.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        finally:
            rlock.release()
    except Exception:  # not the queue we know: the original decides
        return True


class _Side(NamedTuple):
    """What a put and a get do differently; the one path is _through."""

    verb: str  # "put", "get"
    kind: str  # queue.put, queue.get
    gave_up: type[Exception]  # Full, Empty
    refused: str  # queue.full, queue.empty
    raised: str  # queue.Full, queue.Empty
    waits_for: str  # "room in %s", "an item in %s"


_PUT = _Side("put", "queue.put", Full, "queue.full", "queue.Full", "room in %s")
_GET = _Side("get", "queue.get", Empty, "queue.empty", "queue.Empty", "an item in %s")


def _refused(side: _Side, oid: str, queue: Any) -> None:
    budget.report(side.refused, oid, depth=_depth(queue), raised=side.raised)


def _through(side: _Side, original: Callable[..., Any], queue: Any, item: tuple[Any, ...],
             block: bool, timeout: float | None) -> Any:
    """The one path of a traced put (`item`: (obj,)) and get (`item`: ()): a call that may
    block first tries without blocking (put) or looks whether it would (get: _readable),
    and is a wait only then."""
    info = queue.__dict__.get(KEY)
    if info is None:
        return original(queue, *item, block, timeout)
    oid = info[0]
    if not block:
        try:
            result = original(queue, *item, False)
        except side.gave_up:
            _refused(side, oid, queue)
            raise
    elif side is _GET and _readable(queue):
        result = original(queue, True, timeout)
    elif side is _PUT and _put_now(original, queue, item[0]):
        result = None
    else:
        name = info[1]
        try:
            result = _waiting(oid, f"{name}.{side.verb}()", side.waits_for % name,
                              lambda: original(queue, *item, True, timeout),
                              side.gave_up, side.raised)
        except side.gave_up:
            _refused(side, oid, queue)
            raise
    head = _heads.get(oid) or _head(oid)
    budget.report_json(side.kind, oid, f'{head}{encoded.number(_depth(queue))},"item":'
                       f'{encoded.string(naming.short(item[0] if item else result))}}}')
    return result


def _put_now(put: Callable[..., Any], queue: Any, obj: Any) -> bool:
    """A put without blocking: False when the queue is full (then it will wait)."""
    try:
        put(queue, obj, False)
    except Full:
        return False
    return True


def _traced_put(put: Callable[..., None]) -> Callable[..., None]:
    def traced(self: Any, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        _through(_PUT, put, self, (obj,), block, timeout)

    return traced


def _traced_get(get: Callable[..., Any]) -> Callable[..., Any]:
    def traced(self: Any, block: bool = True, timeout: float | None = None) -> Any:
        return _through(_GET, get, self, (), block, timeout)

    return traced


_heads: dict[str, str] = {}  # obj id -> its queue.put's and queue.get's `{"obj":ID,"depth":`


def _head(oid: str) -> str:
    head = _heads[oid] = encoded.head(oid) + ',"depth":'
    return head


def _made(type_name: str) -> Callable[[Any], None]:
    def made(queue: Any) -> None:
        frame = naming.creating_frame(queue)
        if frame is None:
            return
        oid = naming.new_id()
        maxsize = getattr(queue, "_maxsize", None)
        if maxsize is not None:
            # Queue() imported synchronize; a Queue() without a bound has its SEM_VALUE_MAX.
            unbounded = sys.modules["multiprocessing.synchronize"].SEM_VALUE_MAX
            maxsize = None if maxsize >= unbounded else maxsize
        name = naming.announce(oid, type_name, frame, obj=queue, maxsize=maxsize)
        queue.__dict__[KEY] = (oid, name)

    return made


def patch(module: ModuleType) -> None:
    """Runs once per process, when multiprocessing.queues is imported."""
    queue_cls, joinable, simple = module.Queue, module.JoinableQueue, module.SimpleQueue
    wrap_init(queue_cls, _made("Queue"))
    wrap_init(joinable, _made("JoinableQueue"))
    wrap_init(simple, _made("SimpleQueue"))
    for cls in (queue_cls, simple):
        carry.carry_state(cls, lambda queue, info: queue.__dict__.__setitem__(KEY, info))
    queue_cls.put = _traced_put(queue_cls.put)
    joinable.put = _traced_put(joinable.put)
    queue_cls.get = _traced_get(queue_cls.get)
    _patch_joinable(joinable)
    _patch_simple(simple)


def _patch_joinable(cls: Any) -> None:
    task_done, join = cls.task_done, cls.join

    def traced_task_done(self: Any) -> None:
        task_done(self)
        info = self.__dict__.get(KEY)
        if info is not None:
            budget.report("queue.task_done", info[0],
                          unfinished=self._unfinished_tasks._semlock._get_value())

    def traced_join(self: Any) -> None:
        info = self.__dict__.get(KEY)
        if info is None or self._unfinished_tasks._semlock._is_zero():
            return join(self)  # type: ignore[no-any-return]
        what = f"{info[1]}.join()"
        budget.report("join.wait", info[0], what=what, name=info[1])
        join(self)
        budget.report("join.done", info[0], what=what, name=info[1])
        return None

    cls.task_done, cls.join = traced_task_done, traced_join


def _patch_simple(cls: Any) -> None:
    put, get = cls.put, cls.get

    def traced_put(self: Any, obj: Any) -> None:
        put(self, obj)
        info = self.__dict__.get(KEY)
        if info is not None:
            budget.report("queue.put", info[0], item=naming.short(obj))

    def traced_get(self: Any) -> Any:
        info = self.__dict__.get(KEY)
        if info is None:
            return get(self)
        oid, name = info[0], info[1]
        if self.empty():
            call = f"{name}.get()"
            budget.report("wait.start", oid, call=call, waits_for=f"an item in {name}")
            started = _monotonic()
            item = get(self)
            budget.report("wait.end", oid, call=call, waited=round(_monotonic() - started, 6))
        else:
            item = get(self)
        budget.report("queue.get", oid, item=naming.short(item))
        return item

    cls.put, cls.get = traced_put, traced_get
