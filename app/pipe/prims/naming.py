"""Which objects are the program's, what the program calls them, and their `obj.new`.

Runs in every process of a traced run, when an instrumented class makes an object.
Standard library only.

An object is the program's when the frame that asked for it is outside multiprocessing and
concurrent.futures: walking out from the constructor, the frames of its own construction
are passed over (an `__init__` of this very object, a subclass's included; the context's
factories, `ctx.Lock()`; the factory functions each module names, `Pipe`, `synchronized`).
A Queue's own Lock is then asked for by Queue.__init__, inside multiprocessing: not the
program's. The name is read from the creating frame's line (linecache, which the traceback
machinery fills anyway): `lock = Lock()` -> "lock", `self.q = ctx.Queue()` -> "self.q",
`a, b = Pipe()` -> "a" and "b", `with Pool(4) as pool:` -> "pool"; else "Lock #1".
"""

from __future__ import annotations

import itertools
import linecache
import os
import re
import sys
from types import FrameType
from typing import Any

from procscope.pipe.prims import budget

MP_DIR = os.path.dirname(os.path.abspath(sys.modules["multiprocessing"].__file__ or "")) + os.sep
FUTURES_DIR = os.path.join(os.path.dirname(MP_DIR.rstrip(os.sep)), "concurrent", "futures") + os.sep
CONTEXT_FILE = MP_DIR + "context.py"
PRIMS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
ITEM_CHARS = 60

# An assignment's targets (names, attributes, a tuple of them), then the called name.
_ASSIGN = re.compile(r"^\s*(?P<targets>[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*"
                     r"(?::[^=]+)?=(?!=)\s*(?:await\s+)?(?P<call>[A-Za-z_][\w.]*)\s*\(")
_WITH = re.compile(r"^\s*(?:async\s+)?with\s+(?P<call>[A-Za-z_][\w.]*)\s*\(.*?\)\s*as\s+"
                   r"(?P<targets>[A-Za-z_][\w.]*)\s*[:,]")

_serial = itertools.count(1)
_numbers: dict[str, itertools.count[int]] = {}
_names_used: dict[str, int] = {}


def new_id() -> str:
    """An id unique within the run: this process's pid and a serial."""
    return f"{os.getpid()}:{next(_serial)}"


def creating_frame(obj: Any,
                   factories: frozenset[tuple[str, str]] = frozenset()) -> FrameType | None:
    """The program's frame that made `obj`, or None when multiprocessing made it for itself.

    `factories`: (file, function) pairs of the module's own factory functions to pass over.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        if filename.startswith(PRIMS_DIR) or filename == CONTEXT_FILE:
            frame = frame.f_back
            continue
        if code.co_name in ("__init__", "__new__") and frame.f_locals.get("self") is obj:
            frame = frame.f_back
            continue
        if (filename, code.co_name) in factories:
            frame = frame.f_back
            continue
        break
    if frame is None:
        return None
    filename = frame.f_code.co_filename
    if filename.startswith(MP_DIR) or filename.startswith(FUTURES_DIR):
        return None
    return frame


def names_at(frame: FrameType, called: tuple[str, ...]) -> list[str]:
    """The names the line assigns the call's result to, if the line calls one of `called`."""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    for pattern in (_ASSIGN, _WITH):
        m = pattern.match(line)
        if m and m.group("call").rsplit(".", 1)[-1] in called:
            return [t.strip() for t in m.group("targets").split(",")]
    return []


def where(frame: FrameType) -> str:
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def numbered(type_name: str) -> str:
    counter = _numbers.get(type_name)
    if counter is None:
        counter = _numbers[type_name] = itertools.count(1)
    return f"{type_name} #{next(counter)}"


def unique(name: str) -> str:
    """A name once; the same name again (a loop that makes `lock` three times): "lock #2"."""
    seen = _names_used.get(name, 0) + 1
    _names_used[name] = seen
    return name if seen == 1 else f"{name} #{seen}"


def announce(obj_id: str, type_name: str, frame: FrameType, name: str | None = None,
             obj: Any = None, **extra: Any) -> str:
    """obj.new for one object the program made; returns its name. `obj`: the object, whose
    class the program may have named instead (a subclass of the type)."""
    if name is None:
        found = names_at(frame, (type_name, type(obj).__name__))
        name = unique(found[0]) if len(found) == 1 else numbered(type_name)
    budget.emit("obj.new", obj=obj_id, type=type_name, name=name, where=where(frame),
                **{k: v for k, v in extra.items() if v is not None})
    return name


def short(value: Any) -> str:
    """A short repr of an item (at most ITEM_CHARS characters), cheap for the usual ones."""
    kind = type(value)
    if kind is str or kind is bytes:
        text = repr(value[:ITEM_CHARS])
    elif kind is int or kind is float or kind is bool or value is None:
        text = repr(value)
    else:
        try:
            text = _REPR.repr(value)
        except Exception:  # a repr that raises: the program's bug, never ours
            text = f"<{kind.__name__}>"
    return text if len(text) <= ITEM_CHARS else text[:ITEM_CHARS - 3] + "..."


def _short_repr() -> Any:
    import reprlib

    r = reprlib.Repr()
    r.maxlevel = 2
    r.maxtuple = r.maxlist = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 6
    r.maxstring = r.maxother = ITEM_CHARS
    return r


_REPR = _short_repr()
