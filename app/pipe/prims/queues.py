"""multiprocessing.queues instrumented: Queue, JoinableQueue, SimpleQueue.

Runs in every process of a traced run, patched in when multiprocessing.queues is imported
(app.pipe.prims.hook). Standard library only, and app.pipe.prims.

The classes' methods are replaced once; each asks its queue for its Info (carry.KEY in
its `__dict__`) and goes straight to the original for a queue multiprocessing made for
itself (a Pool's, an executor's). A blocking put or get tries without blocking first: only
when that raises Full / Empty is the call a wait (`wait.start`, then the blocking call,
`wait.end`): the same outcome as one blocking call, reported only when it really waited.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from queue import Empty, Full
from types import ModuleType
from typing import Any

from procscope.pipe.prims import budget, carry, naming
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
    budget.report("wait.start", oid, call=call, waits_for=waits_for)
    started = _monotonic()
    try:
        result = blocking()
    except gave_up:
        budget.report("wait.end", oid, call=call, outcome=outcome,
                      waited=round(_monotonic() - started, 6))
        raise
    budget.report("wait.end", oid, call=call, waited=round(_monotonic() - started, 6))
    return result


def _traced_put(put: Callable[..., None]) -> Callable[..., None]:
    def traced(self: Any, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        info = self.__dict__.get(KEY)
        if info is None:
            return put(self, obj, block, timeout)
        oid, name = info[0], info[1]
        try:
            put(self, obj, False)
            blocks = False
        except Full:
            if not block:
                budget.report("queue.full", oid, depth=_depth(self), raised="queue.Full")
                raise
            blocks = True
        if blocks:  # outside the except clause: a Full it raises is not chained to ours
            try:
                _waiting(oid, f"{name}.put()", f"room in {name}",
                         lambda: put(self, obj, True, timeout), Full, "queue.Full")
            except Full:
                budget.report("queue.full", oid, depth=_depth(self), raised="queue.Full")
                raise
        budget.report("queue.put", oid, depth=_depth(self), item=naming.short(obj))
        return None

    return traced


def _traced_get(get: Callable[..., Any]) -> Callable[..., Any]:
    def traced(self: Any, block: bool = True, timeout: float | None = None) -> Any:
        info = self.__dict__.get(KEY)
        if info is None:
            return get(self, block, timeout)
        oid, name = info[0], info[1]
        try:
            item = get(self, False)
            blocks = False
        except Empty:
            if not block:
                budget.report("queue.empty", oid, depth=_depth(self), raised="queue.Empty")
                raise
            blocks = True
        if blocks:  # outside the except clause: an Empty it raises is not chained to ours
            try:
                item = _waiting(oid, f"{name}.get()", f"an item in {name}",
                                lambda: get(self, True, timeout), Empty, "queue.Empty")
            except Empty:
                budget.report("queue.empty", oid, depth=_depth(self), raised="queue.Empty")
                raise
        budget.report("queue.get", oid, depth=_depth(self), item=naming.short(item))
        return item

    return traced


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
