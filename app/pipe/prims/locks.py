"""multiprocessing.synchronize instrumented: Lock, RLock, Semaphore, BoundedSemaphore,
Condition, Event, Barrier.

Runs in every process of a traced run, patched in when multiprocessing.synchronize is
imported (app.pipe.prims.hook). Standard library only, and app.pipe.prims.

A SemLock's `acquire` and `release` are its C semaphore's own bound methods, set on each
instance: so is the program's lock's, instrumented (a closure per lock, over the C methods,
never over the lock itself: no cycle keeps a lock alive). multiprocessing's own locks keep
the C methods and cost nothing. An acquire tries without blocking first: only when that
fails is there a `lock.wait`, and a wait. Past the budget a lock counts its acquisitions
in C (no event, no Python frame) and releases through the C method again.
`with lock:` goes through `acquire`/`release` (SemLock.__enter__ called the C semaphore's
own), so a Condition's and a Value's lock report the same way.
"""

from __future__ import annotations

import functools
import sys
import time
import weakref
from types import ModuleType
from typing import Any

from procscope.pipe.prims import budget, carry, encoded, naming
from procscope.pipe.prims.carry import KEY
from procscope.pipe.prims.patching import wrap_init

_monotonic = time.monotonic


def type_name(obj: Any, module: ModuleType) -> str:
    for cls in (module.BoundedSemaphore, module.Semaphore, module.RLock, module.Lock):
        if isinstance(obj, cls):
            return str(cls.__name__)
    return type(obj).__name__


def instrument_semlock(lock: Any, info: carry.Info, module: ModuleType) -> None:
    """The lock reports from now on (in this process and the children that inherit it)."""
    lock.__dict__[KEY] = info
    oid = info[0]
    sl = lock._semlock
    raw_acquire = sl.acquire
    raw_release = sl.release
    kind = type_name(lock, module)
    recursive = kind == "RLock"
    counts_value = kind in ("Semaphore", "BoundedSemaphore")
    get_value = sl._get_value
    count_of = sl._count
    maxvalue = sl.maxvalue
    ref = weakref.ref(lock)
    counted = 0  # acquisitions counted, not sent, on the way through `acquire`
    counting = False

    head = encoded.head(oid)
    plain = head + "}"  # a Lock's, an RLock's acquire and release: {"obj":ID}

    def value_data(after: int) -> dict[str, Any]:
        return {"value": after} if counts_value else {}

    def acquire(block: bool = True, timeout: float | None = None) -> bool:
        if raw_acquire(False):
            if recursive and count_of() != 1:
                return True  # an inner acquire of an RLock: not the outermost
            if budget.take():
                budget.emit_json("lock.acquire",
                                 f'{head},"value":{get_value()}}}' if counts_value else plain)
            else:
                start_counting()
            return True
        if not block:
            return False
        budget.report("lock.wait", oid)
        started = _monotonic()
        got = raw_acquire(True, timeout)
        waited = round(_monotonic() - started, 6)
        if got:
            budget.report("lock.acquire", oid, waited=waited, **value_data(get_value()))
        else:
            budget.report("lock.timeout", oid, timeout=timeout, waited=waited)
        return bool(got)

    def release() -> None:
        if recursive:
            if count_of() == 1 and sl._is_mine():
                budget.report_json("lock.release", oid, plain)
        else:
            value = get_value()
            if value < maxvalue:
                # Only a release that will succeed is reported (sent before it, as the
                # lessons do: the next holder's lock.acquire comes after it).
                budget.report_json("lock.release", oid, f'{head},"value":{value + 1}}}'
                                   if counts_value else plain)
        raw_release()

    # Past the budget the lock's acquire is its C method behind functools.lru_cache with
    # no cache: C calling C, whose miss count is the count of acquisitions (a Python
    # wrapper would double the cost of a hot loop's pair); its release is the C method.
    # Until the next tally, when the budget has room again: then one event each again.
    counter: Any = functools.lru_cache(maxsize=0)(raw_acquire)

    def drain() -> dict[str, int]:
        nonlocal counted
        n = counted + counter.cache_info().misses
        counted = 0
        counter.cache_clear()
        return {"lock.acquire": n} if n else {}

    def start_counting() -> None:
        nonlocal counted, counting
        counted += 1
        if counting:
            return
        counting = True
        budget.counting(oid, drain, resume)
        held = ref()
        if held is not None:
            held.__dict__["acquire"], held.__dict__["release"] = counter, raw_release

    def resume() -> None:
        nonlocal counting
        counting = False
        held = ref()
        if held is not None:
            held.__dict__["acquire"], held.__dict__["release"] = acquire, release

    lock.__dict__["acquire"] = acquire
    lock.__dict__["release"] = release


def patch(module: ModuleType) -> None:
    """Runs once per process, when multiprocessing.synchronize is imported."""
    semlock = module.SemLock

    def made_semlock(lock: Any) -> None:
        frame = naming.creating_frame(lock)
        if frame is None:
            return
        kind = type_name(lock, module)
        oid = naming.new_id()
        extra: dict[str, Any] = {}
        if kind in ("Semaphore", "BoundedSemaphore"):
            extra["value"] = lock._semlock._get_value()
        name = naming.announce(oid, kind, frame, obj=lock, **extra)
        instrument_semlock(lock, (oid, name), module)

    wrap_init(semlock, made_semlock)
    carry.carry_state(semlock, lambda lock, info: instrument_semlock(lock, info, module))

    def __enter__(self: Any) -> Any:
        return self.acquire()

    def __exit__(self: Any, *args: Any) -> None:
        self.release()

    semlock.__enter__ = __enter__
    semlock.__exit__ = __exit__
    _patch_condition(module)
    _patch_event(module)
    _patch_barrier(module)


def adopt_lock(lock: Any, owner: str, owner_name: str, frame: Any, module: ModuleType) -> None:
    """A lock multiprocessing made for one of the program's objects (a Condition's, a
    Value's) reports as the owner's: `of` the owner, named "lock of OWNER"."""
    if not isinstance(lock, module.SemLock) or carry.info_of(lock) is not None:
        return
    oid = naming.new_id()
    name = f"lock of {owner_name}"
    naming.announce(oid, type_name(lock, module), frame, name=name, of=owner)
    instrument_semlock(lock, (oid, name), module)


def _patch_condition(module: ModuleType) -> None:
    cls = module.Condition
    wait, notify = cls.wait, cls.notify

    def made(cond: Any) -> None:
        frame = naming.creating_frame(cond)
        if frame is None:
            return
        oid = naming.new_id()
        name = naming.announce(oid, "Condition", frame, obj=cond)
        cond.__dict__[KEY] = (oid, name)
        adopt_lock(cond._lock, oid, name, frame, module)
        cond._make_methods()  # acquire/release: the lock's, as instrumented now

    def traced_wait(self: Any, timeout: float | None = None) -> bool:
        info = self.__dict__.get(KEY)
        if info is None:
            return wait(self, timeout)  # type: ignore[no-any-return]
        budget.report("wait.start", info[0], call=f"{info[1]}.wait()",
                      waits_for=f"a notify() of {info[1]}")
        started = _monotonic()
        got = wait(self, timeout)
        done: dict[str, Any] = {} if got else {"outcome": "timeout"}
        budget.report("wait.end", info[0], call=f"{info[1]}.wait()",
                      waited=round(_monotonic() - started, 6), **done)
        return got  # type: ignore[no-any-return]

    def traced_notify(self: Any, n: int = 1) -> None:
        info = self.__dict__.get(KEY)
        if info is not None:
            if n >= sys.maxsize:
                budget.report("cond.notify", info[0], n=None, all=True)
            else:
                budget.report("cond.notify", info[0], n=n)
        notify(self, n)

    wrap_init(cls, made)
    carry.carry_state(cls, lambda cond, info: cond.__dict__.__setitem__(KEY, info))
    cls.wait, cls.notify = traced_wait, traced_notify


def _patch_event(module: ModuleType) -> None:
    # Event pickles its __dict__: the Info travels with it on its own.
    cls = module.Event
    set_, clear, wait, is_set = cls.set, cls.clear, cls.wait, cls.is_set

    def made(event: Any) -> None:
        frame = naming.creating_frame(event)
        if frame is not None:
            oid = naming.new_id()
            event.__dict__[KEY] = (oid, naming.announce(oid, "Event", frame, obj=event))

    def traced_set(self: Any) -> None:
        info = self.__dict__.get(KEY)
        set_(self)
        if info is not None:
            budget.report("event.set", info[0])

    def traced_clear(self: Any) -> None:
        info = self.__dict__.get(KEY)
        clear(self)
        if info is not None:
            budget.report("event.clear", info[0])

    def traced_wait(self: Any, timeout: float | None = None) -> bool:
        info = self.__dict__.get(KEY)
        if info is None or is_set(self):
            return wait(self, timeout)  # type: ignore[no-any-return]
        call = f"{info[1]}.wait()"
        budget.report("wait.start", info[0], call=call, waits_for=f"{info[1]}.set()")
        started = _monotonic()
        got = wait(self, timeout)
        done: dict[str, Any] = {} if got else {"outcome": "timeout"}
        budget.report("wait.end", info[0], call=call,
                      waited=round(_monotonic() - started, 6), **done)
        return got  # type: ignore[no-any-return]

    wrap_init(cls, made)
    cls.set, cls.clear, cls.wait = traced_set, traced_clear, traced_wait


def _patch_barrier(module: ModuleType) -> None:
    import threading

    cls = module.Barrier
    wait = cls.wait

    def made(barrier: Any) -> None:
        frame = naming.creating_frame(barrier)
        if frame is not None:
            oid = naming.new_id()
            name = naming.announce(oid, "Barrier", frame, obj=barrier, parties=barrier.parties)
            barrier.__dict__[KEY] = (oid, name)

    def traced_wait(self: Any, timeout: float | None = None) -> int:
        info = self.__dict__.get(KEY)
        if info is None:
            return wait(self, timeout)  # type: ignore[no-any-return]
        parties = self.parties
        call = f"{info[1]}.wait()"
        # Whether this call will wait is decided under the barrier's own Condition (an RLock,
        # so wait() takes it again): read outside it, two parties arriving together could
        # both count themselves first and both draw a wait.
        try:
            with self._cond:
                blocks = self.n_waiting + 1 < parties
                if blocks:
                    budget.report("wait.start", info[0], call=call,
                                  waits_for=f"all {parties} parties of {info[1]}")
                started = _monotonic()
                index = wait(self, timeout)
        except threading.BrokenBarrierError:
            if blocks:
                budget.report("wait.end", info[0], call=call, outcome="BrokenBarrierError",
                              waited=round(_monotonic() - started, 6))
            raise
        if blocks:
            budget.report("wait.end", info[0], call=call,
                          waited=round(_monotonic() - started, 6))
        budget.report("barrier.pass", info[0], parties=parties)
        return index  # type: ignore[no-any-return]

    wrap_init(cls, made)
    carry.carry_state(cls, lambda barrier, info: barrier.__dict__.__setitem__(KEY, info))
    cls.wait = traced_wait
