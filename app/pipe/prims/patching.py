"""How the instrumentation wraps a class: its constructor, and nothing it makes for itself.

Runs in every process of a traced run. Standard library only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

_INIT = "_procscope_init"


def wrap_init(cls: type, made: Callable[[Any], None]) -> None:
    """`made(obj)` once the outermost wrapped `__init__` of a new `obj` has returned.

    A subclass's `__init__` that calls its base's (JoinableQueue's calls Queue's) is one
    construction: only the outermost wrapped one calls its `made`. Instrumenting never
    breaks the program: an error in `made` is dropped.
    """
    original: Any = cls.__dict__.get("__init__") or cls.__init__  # type: ignore[misc]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        state = self.__dict__
        if _INIT in state:
            original(self, *args, **kwargs)
            return
        state[_INIT] = True
        try:
            original(self, *args, **kwargs)
        finally:
            state.pop(_INIT, None)
        # A bug of ours must never be the program's: an error in made() is dropped.
        with contextlib.suppress(Exception):
            made(self)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]
