"""multiprocessing.managers' proxies and sharedctypes' Value / Array instrumented.

Runs in every process of a traced run, patched in when multiprocessing.managers /
multiprocessing.sharedctypes is imported (app.pipe.prims.hook). Standard library only,
and app.pipe.prims.

A proxy's every call of its referent's methods goes through BaseProxy._callmethod, one
round trip to the manager: each is an `mgr.call` (the referent's id, the method, the
round trip), from whichever process made it, for every proxy (a proxy is always asked
for by the program, or handed back by a call of one). A Value's or an Array's lock is
instrumented as the object's (`of` it, named "lock of NAME"): its contention is the lock's.
"""

from __future__ import annotations

import os
import time
from types import ModuleType
from typing import Any

from procscope.pipe.prims import naming
from procscope.pipe.prims.budget import report
from procscope.pipe.prims.carry import KEY
from procscope.pipe.prims.patching import wrap_init

_monotonic = time.monotonic


def referent_id(token: Any) -> str:
    """A referent's id, the same in every process: its manager's address and its id."""
    address = token.address
    where = os.path.basename(address) if isinstance(address, str) else ":".join(
        str(part) for part in address)
    return f"{where}/{token.id}"


def patch_managers(module: ModuleType) -> None:
    """Runs once per process, when multiprocessing.managers is imported."""
    base = module.BaseProxy
    callmethod = base._callmethod
    factories = frozenset((str(module.__file__), name) for name in ("temp", "AutoProxy"))

    def made_manager(manager: Any) -> None:
        frame = naming.creating_frame(manager)
        if frame is not None:
            oid = naming.new_id()
            manager.__dict__[KEY] = (oid, naming.announce(oid, "Manager", frame))

    def made_proxy(proxy: Any) -> None:
        frame = naming.creating_frame(proxy, factories)
        if frame is None:
            return
        token = proxy._token
        naming.announce(referent_id(token), "Proxy", frame, typeid=token.typeid,
                        name=_proxy_name(frame, token.typeid))

    def traced_callmethod(self: Any, methodname: str, args: tuple[Any, ...] = (),
                          kwds: dict[str, Any] = {}) -> Any:  # noqa: B006 - the original's
        if methodname.startswith("#"):
            return callmethod(self, methodname, args, kwds)  # #GETVALUE: a copy, internal
        started = _monotonic()
        try:
            return callmethod(self, methodname, args, kwds)
        finally:
            report("mgr.call", referent_id(self._token), method=methodname,
                   waited=round(_monotonic() - started, 6))

    wrap_init(module.BaseManager, made_manager)
    wrap_init(base, made_proxy)
    base._callmethod = traced_callmethod


def _proxy_name(frame: Any, typeid: str) -> str:
    found = naming.names_at(frame, (typeid,))
    return naming.unique(found[0]) if len(found) == 1 else naming.numbered(typeid)


def patch_sharedctypes(module: ModuleType) -> None:
    """Runs once per process, when multiprocessing.sharedctypes is imported."""
    from procscope.pipe.prims import locks

    factories = frozenset((str(module.__file__), name)
                          for name in ("synchronized", "Value", "Array"))

    def made(shared: Any) -> None:
        frame = naming.creating_frame(shared, factories)
        if frame is None:
            return
        kind = "Value" if isinstance(shared, module.Synchronized) else "Array"
        oid = naming.new_id()
        name = naming.announce(oid, kind, frame)
        shared.__dict__[KEY] = (oid, name)
        synchronize = __import__("multiprocessing.synchronize", fromlist=["SemLock"])
        locks.adopt_lock(shared._lock, oid, name, frame, synchronize)
        shared.acquire, shared.release = shared._lock.acquire, shared._lock.release

    wrap_init(module.SynchronizedBase, made)
