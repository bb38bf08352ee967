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
    locks        synchronize: Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event,
                 Barrier
    queues       queues: Queue, JoinableQueue, SimpleQueue
    pipes        connection: Pipe's two Connections
    pools        pool.Pool and concurrent.futures' ProcessPoolExecutor: the tasks
    shared       managers' proxies (mgr.call) and sharedctypes' Value / Array (their lock)
"""

from __future__ import annotations

from types import ModuleType

from procscope.pipe.prims import budget, hook


def _locks(module: ModuleType) -> None:
    from procscope.pipe.prims import locks

    locks.patch(module)


def _queues(module: ModuleType) -> None:
    from procscope.pipe.prims import queues

    queues.patch(module)


def _pool(module: ModuleType) -> None:
    from procscope.pipe.prims import pools

    pools.patch_pool(module)


def _executor(module: ModuleType) -> None:
    from procscope.pipe.prims import pools

    pools.patch_executor(module)


def _pipes(module: ModuleType) -> None:
    from procscope.pipe.prims import pipes

    pipes.patch(module)


def _managers(module: ModuleType) -> None:
    from procscope.pipe.prims import shared

    shared.patch_managers(module)


def _sharedctypes(module: ModuleType) -> None:
    from procscope.pipe.prims import shared

    shared.patch_sharedctypes(module)


PATCHES: dict[str, hook.Patch] = {
    "multiprocessing.connection": _pipes,
    "multiprocessing.managers": _managers,
    "multiprocessing.sharedctypes": _sharedctypes,
    "multiprocessing.synchronize": _locks,
    "multiprocessing.queues": _queues,
    "multiprocessing.pool": _pool,
    "concurrent.futures.process": _executor,
}


def install(emit: budget.Emit) -> None:
    """Instrument this process's multiprocessing from now on (idempotent)."""
    budget.set_emit(emit)
    hook.install(PATCHES)


def at_exit() -> None:
    """What was counted and not sent, as prims.tally: before the process's proc.exit."""
    budget.flush()
