"""An instrumented object's identity, kept in the object and carried when it is pickled.

Runs in every process of a traced run. Standard library only.

An instrumented object holds its `Info` under KEY in its `__dict__` (a plain picklable
tuple: its id, its name, and per type what else its events need). A fork child inherits it
with the object. Objects pickled to a child (spawn, forkserver, a Pool's initargs) whose
class writes its own state (`__getstate__`: SemLock, Queue, Condition, Barrier) would lose
it: the class's `__reduce_ex__` is replaced by one that, for an instrumented object only,
wraps the class's own state with the Info, and rebuilds the object in the child as
copyreg would (`cls.__new__`, then the class's own `__setstate__`) before instrumenting it
again there. Objects that multiprocessing made for itself pickle exactly as before.
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable
from typing import Any

KEY = "_procscope_prim"

Info = tuple[Any, ...]  # (obj id, name, ...)
# type -> what instruments an object of it again in the process that unpickled it
_rearm: dict[type, Callable[[Any, Info], None]] = {}


def info_of(obj: Any) -> Info | None:
    try:
        return obj.__dict__.get(KEY)  # type: ignore[no-any-return]
    except AttributeError:
        return None


def carry_state(cls: type, rearm: Callable[[Any, Info], None]) -> None:
    """Pickled instances of `cls` (and its subclasses) keep their Info; unpickling one
    calls `rearm(obj, info)` once the class's own __setstate__ has run."""
    _rearm[cls] = rearm
    if "__reduce_ex__" in cls.__dict__:
        return

    def __reduce_ex__(self: Any, protocol: Any) -> Any:
        info = self.__dict__.get(KEY)
        own = any("__reduce__" in c.__dict__ for c in type(self).__mro__[:-1])
        if info is None or own or not hasattr(self, "__getstate__"):
            return object.__reduce_ex__(self, protocol)
        return _rebuild, (type(self), self.__getstate__(), info)

    cls.__reduce_ex__ = __reduce_ex__  # type: ignore[assignment]


def _rebuild(cls: type, state: Any, info: Info) -> Any:
    """Runs in the process that unpickles an instrumented object (a spawned child)."""
    obj = copyreg.__newobj__(cls)  # type: ignore[attr-defined]
    obj.__setstate__(state)
    for base in cls.__mro__:
        rearm = _rearm.get(base)
        if rearm is not None:
            rearm(obj, info)
            break
    return obj
