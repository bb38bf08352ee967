"""multiprocessing.connection instrumented: the two Connections of the program's Pipe().

Runs in every process of a traced run, patched in when multiprocessing.connection is
imported (app.pipe.prims.hook). Standard library only, and app.pipe.prims.

Only the ends that `Pipe()` hands to the program are tagged (carry.KEY): a Queue's, a
Pool's and a Manager's connections are made by multiprocessing and cost one dict look-up
a call. A tagged end's `send` pickles as Connection.send does and sends those bytes, so the
size is known without pickling twice; `recv` receives the bytes and unpickles them. A
`recv` with nothing to read yet (poll) is a wait. A tagged end pickled to a child keeps its
tag: the module's reducer for Connection is wrapped.
"""

from __future__ import annotations

import contextlib
import time
from types import ModuleType
from typing import Any

from procscope.pipe.prims import budget, naming
from procscope.pipe.prims.carry import KEY, Info

_monotonic = time.monotonic


def _rebuild_tagged(rebuild: Any, args: tuple[Any, ...], info: Info) -> Any:
    """Runs in the process that unpickles a tagged end (a spawned child)."""
    conn = rebuild(*args)
    conn.__dict__[KEY] = info
    return conn


def patch(module: ModuleType) -> None:
    """Runs once per process, when multiprocessing.connection is imported."""
    from multiprocessing import reduction

    base, pipe = module._ConnectionBase, module.Pipe
    send, recv = base.send, base.recv
    send_bytes, recv_bytes = base.send_bytes, base.recv_bytes
    pickler = reduction.ForkingPickler

    def traced_pipe(duplex: bool = True) -> Any:
        ends = pipe(duplex)
        with contextlib.suppress(Exception):  # a bug of ours must not be the program's
            _announce(ends)
        return ends

    def _announce(ends: tuple[Any, Any]) -> None:
        frame = naming.creating_frame(ends[0])
        if frame is None:
            return
        ids = naming.new_id(), naming.new_id()
        found = naming.names_at(frame, ("Pipe",))
        names = found if len(found) == 2 else [naming.numbered("Connection") for _ in ids]
        names = [naming.unique(n) for n in names]
        for i, conn in enumerate(ends):
            naming.announce(ids[i], "Connection", frame, name=names[i], peer=ids[1 - i])
            conn.__dict__[KEY] = (ids[i], names[i])

    def traced_send(self: Any, obj: Any) -> None:
        info = self.__dict__.get(KEY)
        if info is None:
            return send(self, obj)  # type: ignore[no-any-return]
        self._check_closed()
        self._check_writable()
        buf = pickler.dumps(obj)
        send_bytes(self, buf)
        budget.report("pipe.send", info[0], bytes=len(buf))
        return None

    def traced_send_bytes(self: Any, buf: Any, offset: int = 0, size: int | None = None) -> None:
        info = self.__dict__.get(KEY)
        send_bytes(self, buf, offset, size)
        if info is not None:
            sent = size if size is not None else memoryview(buf).nbytes - offset
            budget.report("pipe.send", info[0], bytes=sent)

    def received(self: Any, info: Info, maxlength: int | None = None) -> bytes:
        if budget.take() and not self.poll():
            call = f"{info[1]}.recv()"
            budget.emit("wait.start", obj=info[0], call=call,
                        waits_for=f"something sent to {info[1]}")
            started = _monotonic()
            try:
                buf: bytes = recv_bytes(self, maxlength)
            except EOFError:
                budget.report("wait.end", info[0], call=call, outcome="EOFError",
                              waited=round(_monotonic() - started, 6))
                raise
            budget.report("wait.end", info[0], call=call,
                          waited=round(_monotonic() - started, 6))
        else:
            buf = recv_bytes(self, maxlength)
        budget.report("pipe.recv", info[0], bytes=len(buf))
        return buf

    def traced_recv(self: Any) -> Any:
        info = self.__dict__.get(KEY)
        if info is None:
            return recv(self)
        return pickler.loads(received(self, info))

    def traced_recv_bytes(self: Any, maxlength: int | None = None) -> bytes:
        info = self.__dict__.get(KEY)
        if info is None:
            return recv_bytes(self, maxlength)  # type: ignore[no-any-return]
        return received(self, info, maxlength)

    setattr(module, "Pipe", traced_pipe)  # noqa: B010 - mypy: the stubs hide Pipe
    base.send, base.recv = traced_send, traced_recv
    base.send_bytes, base.recv_bytes = traced_send_bytes, traced_recv_bytes
    reduce_connection = module.reduce_connection

    def reduce_tagged(conn: Any) -> Any:
        reduced = reduce_connection(conn)
        info = conn.__dict__.get(KEY)
        if info is None:
            return reduced
        return _rebuild_tagged, (reduced[0], reduced[1], info)

    reduction.register(module.Connection, reduce_tagged)
