"""multiprocessing's primitives, instrumented: what a traced program's Locks, Queues, Pools,
Pipes, Managers ... do, as events (docs/api.md, Event kinds: `obj.new` and the kinds after
it).

Runs in every process of a traced run (and of a lesson whose spec asks for it), armed by
app.pipe.reporter. Standard library only, like the reporter: it is given the reporter's
`emit`, and imports no multiprocessing module of its own; each is patched as the program
imports it (hook). One module per part:

    hook         patches each module as it is imported
    patching     a class's constructor wrapped: the object announced once made
    naming       whose object it is (the creating frame), its name, obj.new
    carry        an object's identity kept across pickling (spawn, forkserver)
    budget       events one by one up to a rate, counted past it (prims.tally)
    encoded      an object's events' constant JSON, made once per object
    locks        synchronize: Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event,
                 Barrier
    queues       queues: Queue, JoinableQueue, SimpleQueue
    pipes        connection: Pipe's two Connections
    pools        pool.Pool and concurrent.futures' ProcessPoolExecutor: the tasks
    shared       managers' proxies (mgr.call) and sharedctypes' Value / Array (their lock)
"""

from __future__ import annotations

import importlib
from types import ModuleType

from procscope.pipe.prims import budget, hook


def _later(name: str, function: str) -> hook.Patch:
    """The patch `function` of prims module `name`, imported only when its multiprocessing
    submodule is (a program that never imports it pays nothing)."""
    def patch(module: ModuleType) -> None:
        getattr(importlib.import_module(f"procscope.pipe.prims.{name}"), function)(module)

    return patch


PATCHES: dict[str, hook.Patch] = {
    "multiprocessing.connection": _later("pipes", "patch"),
    "multiprocessing.managers": _later("shared", "patch_managers"),
    "multiprocessing.sharedctypes": _later("shared", "patch_sharedctypes"),
    "multiprocessing.synchronize": _later("locks", "patch"),
    "multiprocessing.queues": _later("queues", "patch"),
    "multiprocessing.pool": _later("pools", "patch_pool"),
    "concurrent.futures.process": _later("pools", "patch_executor"),
}


def install(emit: budget.Emit, emit_json: budget.EmitJson) -> None:
    """Instrument this process's multiprocessing from now on (idempotent): events go out
    through the reporter's `emit` and `emit_json`."""
    budget.set_emit(emit, emit_json)
    hook.install(PATCHES)


def at_exit() -> None:
    """What was counted and not sent, as prims.tally: before the process's proc.exit."""
    budget.flush()
