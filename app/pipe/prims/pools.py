"""multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor instrumented: each task
submitted, started and ended in its worker, and its result handed over.

Runs in every process of a traced run: the submitting side is patched in when
multiprocessing.pool / concurrent.futures.process is imported (app.pipe.prims.hook);
`TracedCall` runs in each worker. Standard library only, and app.pipe.prims.

The program's function goes to the workers inside a `TracedCall` (pickled with it, as the
function itself would be), which reports `task.start` and `task.end` around it. A map's
items go with their index: `enumerate` on the submitting side, unpacked in the worker, so
the chunks, their sizes and the results are the ones the pool would have made. Task ids
are the pool's own count of calls, from 1, in the submitting process (a pool cannot be
pickled: it has one submitter).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from procscope.pipe.prims import budget, naming
from procscope.pipe.prims.carry import KEY
from procscope.pipe.prims.patching import wrap_init

LABEL_CHARS = 60
_UNSET: Any = object()
_inside = threading.local()  # a traced call whose own inner calls are not tasks again


def _label(fn: Any, args: tuple[Any, ...]) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    text = f"{name}({', '.join(naming.short(a) for a in args)})"
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 4] + "...)"


class TracedCall:
    """Runs in each worker: one of the program's tasks, reported around the call.

    `indexed`: called with one `(index, item)` pair (a map's); `star`: the item is the
    arguments (starmap, executor.map), else the one argument; `tagged`: returns
    `(index, result)` (an imap's: which item a result is, whatever order the chunks come
    back in, is known only from the result; the submitting side unpacks it, _untagged).
    """

    __slots__ = ("fn", "pool", "task", "indexed", "star", "tagged")

    def __init__(self, fn: Callable[..., Any], pool: str, task: int, indexed: bool,
                 star: bool = False, tagged: bool = False) -> None:
        self.fn, self.pool, self.task, self.indexed, self.star = fn, pool, task, indexed, star
        self.tagged = tagged

    def __reduce__(self) -> tuple[Any, ...]:
        return TracedCall, (self.fn, self.pool, self.task, self.indexed, self.star,
                            self.tagged)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        index = None
        if self.indexed:
            (index, item), = args
            args = tuple(item) if self.star else (item,)
        task: dict[str, Any] = {"pool": self.pool, "task": self.task,
                                "label": _label(self.fn, args)}
        if index is not None:
            task["index"] = index
        budget.send("task.start", self.pool, **task)
        try:
            result = self.fn(*args, **kwargs)
        except BaseException as e:
            budget.send("task.end", self.pool, error=type(e).__name__, **task)
            raise
        budget.send("task.end", self.pool, **task)
        return (index, result) if self.tagged else result


def _submitted(info: tuple[Any, ...], task: int, mode: str, fn: Any,
               items: Iterable[Any], zipped: bool = False,
               starred: bool = False) -> Iterator[Any]:
    """The items with their index, each reported as it is taken (a map's, in the calling
    thread; an imap's, in the pool's task-handler thread, as the pool takes them).
    `starred`: a starmap's, which calls the function with each item's elements: the pair is
    its one element."""
    oid = info[0]
    fn_name = getattr(fn, "__name__", None) or type(fn).__name__
    for index, item in enumerate(items):
        shown = item[0] if zipped and len(item) == 1 else item  # executor.map's one iterable
        budget.send("task.submit", oid, pool=oid, task=task, index=index, fn=fn_name,
                    item=naming.short(shown), mode=mode)
        yield ((index, item),) if starred else (index, item)


def _submit_one(info: tuple[Any, ...], mode: str, fn: Any, args: tuple[Any, ...]) -> int:
    task: int = next(info[2])
    fn_name = getattr(fn, "__name__", None) or type(fn).__name__
    item = naming.short(args[0]) if len(args) == 1 else naming.short(args)
    budget.send("task.submit", info[0], pool=info[0], task=task, fn=fn_name, item=item,
                mode=mode)
    return task


def _result(info: tuple[Any, ...], task: int, index: int | None = None) -> None:
    if index is None:
        budget.send("task.result", info[0], pool=info[0], task=task)
    else:
        budget.send("task.result", info[0], pool=info[0], task=task, index=index)


def _handed_over(info: tuple[Any, ...], task: int, results: Iterable[Any]) -> Iterator[Any]:
    """A chunked imap's results, each `(index, result)` from its TracedCall, as the program
    takes them: task.result with the item's index."""
    for index, value in results:
        _result(info, task, index)
        yield value


def _made_pool(type_name: str, thread_pool: type | None = None) -> Callable[[Any], None]:
    def made(pool: Any) -> None:
        if thread_pool is not None and isinstance(pool, thread_pool):
            return  # threads, not processes: not instrumented
        frame = naming.creating_frame(pool)
        if frame is None:
            return
        oid = naming.new_id()
        processes = getattr(pool, "_processes", None) or getattr(pool, "_max_workers", None)
        name = naming.announce(oid, type_name, frame, obj=pool, processes=processes)
        pool.__dict__[KEY] = (oid, name, itertools.count(1))

    return made


def patch_pool(module: ModuleType) -> None:
    """Runs once per process, when multiprocessing.pool is imported."""
    cls = module.Pool
    wrap_init(cls, _made_pool("Pool", module.ThreadPool))
    _patch_maps(cls)
    _patch_async(cls)
    _patch_results(module)


def _patch_maps(cls: Any) -> None:
    def traced_map(mode: str, star: bool) -> Callable[..., Any]:
        original = getattr(cls, mode)

        def traced(self: Any, func: Any, iterable: Iterable[Any], chunksize: Any = _UNSET,
                   *rest: Any, **kwargs: Any) -> Any:
            # The chunksize as given, or not at all: the original's default is its own
            # (None for map, 1 for imap).
            sized = () if chunksize is _UNSET else (chunksize,)
            info = self.__dict__.get(KEY)
            if info is None or getattr(_inside, "active", False):
                return original(self, func, iterable, *sized, *rest, **kwargs)
            self._check_running()  # before the items are taken, as the pool does
            task = next(info[2])
            lazy = mode.startswith("imap")
            call = TracedCall(func, info[0], task, indexed=True, star=star, tagged=lazy)
            items = _submitted(info, task, mode, func, iterable, starred=star)
            result = original(self, call, items if lazy else list(items), *sized, *rest,
                              **kwargs)
            if mode in ("map", "starmap"):
                _result(info, task)
            elif mode.startswith("imap") and not isinstance(result, _IMAP):
                return _handed_over(info, task, result)  # chunks: a generator already
            else:
                result.__dict__[KEY] = (info, task)
            return result

        traced.__name__ = mode
        return traced

    for mode, star in (("map", False), ("starmap", True), ("map_async", False),
                       ("starmap_async", True), ("imap", False), ("imap_unordered", False)):
        setattr(cls, mode, traced_map(mode, star))


def _patch_async(cls: Any) -> None:
    apply, apply_async = cls.apply, cls.apply_async

    def traced_apply(self: Any, func: Any, args: tuple[Any, ...] = (),
                     kwds: dict[str, Any] = {}) -> Any:  # noqa: B006 - Pool.apply's own
        info = self.__dict__.get(KEY)
        if info is None or getattr(_inside, "active", False):
            return apply(self, func, args, kwds)
        task = _submit_one(info, "apply", func, tuple(args))
        _inside.active = True
        try:
            result = apply(self, TracedCall(func, info[0], task, indexed=False), args, kwds)
        finally:
            _inside.active = False
        _result(info, task)
        return result

    def traced_apply_async(self: Any, func: Any, args: tuple[Any, ...] = (),
                           kwds: dict[str, Any] = {},  # noqa: B006 - Pool.apply_async's own
                           *rest: Any, **kwargs: Any) -> Any:
        info = self.__dict__.get(KEY)
        if info is None or getattr(_inside, "active", False):
            return apply_async(self, func, args, kwds, *rest, **kwargs)
        task = _submit_one(info, "apply_async", func, tuple(args))
        result = apply_async(self, TracedCall(func, info[0], task, indexed=False), args, kwds,
                             *rest, **kwargs)
        result.__dict__[KEY] = (info, task, None)
        return result

    cls.apply, cls.apply_async = traced_apply, traced_apply_async


_IMAP: type = object


def _patch_results(module: ModuleType) -> None:
    global _IMAP
    _IMAP = module.IMapIterator
    result_cls, imap_cls = module.ApplyResult, module.IMapIterator
    get, next_ = result_cls.get, imap_cls.next
    timeout_error = module.TimeoutError

    def traced_get(self: Any, timeout: float | None = None) -> Any:
        mark = self.__dict__.get(KEY)
        if mark is None:
            return get(self, timeout)
        try:
            value = get(self, timeout)
        except timeout_error:
            raise  # not handed over yet
        except BaseException:
            self.__dict__.pop(KEY, None)
            _result(mark[0], mark[1])
            raise
        self.__dict__.pop(KEY, None)
        _result(mark[0], mark[1])
        return value

    def traced_next(self: Any, timeout: float | None = None) -> Any:
        mark = self.__dict__.get(KEY)
        value = next_(self, timeout)
        if mark is not None:
            index, value = value  # a tagged TracedCall's (index, result)
            _result(mark[0], mark[1], index)
        return value

    result_cls.get = traced_get
    imap_cls.next = imap_cls.__next__ = traced_next


def patch_executor(module: ModuleType) -> None:
    """Runs once per process, when concurrent.futures.process is imported."""
    cls = module.ProcessPoolExecutor
    submit, map_ = cls.submit, cls.map
    wrap_init(cls, _made_pool("ProcessPoolExecutor"))

    def traced_submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        info = self.__dict__.get(KEY)
        if info is None or getattr(_inside, "active", False):
            return submit(self, fn, *args, **kwargs)
        task = _submit_one(info, "submit", fn, args)
        future = submit(self, TracedCall(fn, info[0], task, indexed=False), *args, **kwargs)
        future.add_done_callback(lambda _: _result(info, task))
        return future

    def traced_map(self: Any, fn: Any, *iterables: Any, timeout: float | None = None,
                   chunksize: int = 1) -> Any:
        info = self.__dict__.get(KEY)
        if info is None or getattr(_inside, "active", False):
            return map_(self, fn, *iterables, timeout=timeout, chunksize=chunksize)
        task = next(info[2])
        call = TracedCall(fn, info[0], task, indexed=True, star=True, tagged=True)
        items = _submitted(info, task, "executor.map", fn, zip(*iterables),  # noqa: B905
                           zipped=True)
        _inside.active = True
        try:
            results = map_(self, call, items, timeout=timeout, chunksize=chunksize)
        finally:
            _inside.active = False
        return _handed_over(info, task, results)

    cls.submit, cls.map = traced_submit, traced_map
