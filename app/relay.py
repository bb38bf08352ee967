"""The relay: one thread that reads every run's event pipe and stamps the events.

Runs in the server (or `procscope run`), in its own thread. Modelled on
logging.handlers.QueueListener: a loop over a selector, stopped by a sentinel, joined.

    run pipes (one per run) ─┐
    wake pipe (commands) ────┴─► selector ─► decode ─► stamp seq, t ─► deliver(run, batch)

Stamping here, in one thread, is what makes `seq` gap-free per run: pipe events, the
server's own events (`inject`) and the final `run.end` all pass through `_accept`. The
relay also keeps the contract "proc.exit once for every process": a process killed by a
signal cannot report its own exit, so its parent's `proc.reap` stands in for it, and at the
end of the run any process never seen to exit gets a `proc.exit` saying so.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.reporter import HEADER, STAMP

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20  # room for a 100-process start burst while the relay is busy
READ_SIZE = 1 << 16
# Past a run's event cap these kinds are still kept: without them a run has no shape.
ALWAYS_KEPT = frozenset({"run.start", "run.result", "run.error", "run.end",
                         "proc.start", "proc.exit", "proc.reap", "error"})


class Event:
    """One stamped event: its SSE frame, encoded once; decoded only if someone asks."""

    __slots__ = ("seq", "kind", "frame", "data_at", "_obj")

    def __init__(self, seq: int, kind: str, body: bytes) -> None:
        self.seq = seq
        self.kind = kind
        head = b"id: %d\nevent: %s\ndata: " % (seq, kind.encode())
        self.frame = head + body + b"\n\n"
        self.data_at = len(head)
        self._obj: dict[str, Any] | None = None

    @property
    def json(self) -> bytes:
        return self.frame[self.data_at:-2]

    @property
    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = json.loads(self.json)
        return self._obj


# Kinds the relay (and the run manager after it) must look inside; the rest pass through
# as the bytes their process wrote.
DECODED = frozenset({"run.start", "run.result", "run.error", "run.end",
                     "proc.start", "proc.exit", "proc.reap"})
_to_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=repr).encode


def _body(event: dict[str, Any]) -> bytes:
    """A server-side event's JSON, "kind" first and without "t", as a process writes it."""
    rest = {k: v for k, v in event.items() if k not in ("kind", "t")}
    return _to_json({"kind": event["kind"], **rest}).encode()


Deliver = Callable[[str, list[Event]], None]


@dataclass
class _RunState:
    run_id: str
    fd: int
    t0: int
    max_events: int
    seq: int = 0
    dropped: int = 0
    buf: bytearray = field(default_factory=bytearray)
    names: dict[int, str] = field(default_factory=dict)
    exited: set[int] = field(default_factory=set)
    pending: list[Event] = field(default_factory=list)
    result: Any = None
    error: str | None = None


class Relay:
    """Reads all run pipes in one thread; hands stamped batches to `deliver`."""

    def __init__(self, deliver: Deliver, on_eof: Callable[[str], None],
                 on_proc_start: Callable[[str, int], None] | None = None) -> None:
        self._deliver = deliver
        self.on_proc_start = on_proc_start
        self._on_eof = on_eof
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._runs: dict[str, _RunState] = {}
        self._thread: threading.Thread | None = None

    # --- called from other threads ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="procscope-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop on a sentinel, join, clear the handle."""
        if self._thread is None:
            return
        self._command("stop", None)
        self._thread.join()
        self._thread = None
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def add(self, run_id: str, read_fd: int, t0: int, start_data: dict[str, Any],
            max_events: int = 1_000_000) -> None:
        """Follow a new run's pipe; its `run.start` (seq 1, t 0) is stamped first."""
        self._command("add", (run_id, read_fd, t0, start_data, max_events))

    def inject(self, run_id: str, kind: str, data: dict[str, Any], *, pid: int | None = None,
               proc: str | None = None) -> None:
        """An event from the server's side (sampler, reaping, run.end) into a run's log."""
        event = {"kind": kind, "t": time.monotonic_ns(), "pid": pid, "ppid": None,
                 "cpu": None, "proc": proc, "data": data}
        self._command("inject", (run_id, [event]))

    def inject_many(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """Several server-side events at once (the sampler's), with their own `t`."""
        self._command("inject", (run_id, events))

    def _command(self, name: str, arg: Any) -> None:
        self._commands.put((name, arg))
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:  # the wake pipe is full: the relay is awake anyway
            pass

    # --- the relay thread ---

    def _loop(self) -> None:
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        while True:
            for key, _ in self._selector.select():
                state: _RunState | None = key.data
                if state is None:
                    os.read(self._wake_r, 4096)
                    if not self._run_commands():
                        return
                else:
                    self._read(state)
            for state in list(self._runs.values()):
                self._flush(state)

    def _run_commands(self) -> bool:
        while True:
            try:
                name, arg = self._commands.get_nowait()
            except queue.Empty:
                return True
            if name == "stop":
                for state in self._runs.values():
                    self._close_pipe(state)
                return False
            if name == "add":
                run_id, fd, t0, start_data, max_events = arg
                try:
                    fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
                except OSError:
                    pass
                state = _RunState(run_id, fd, t0, max_events)
                self._runs[run_id] = state
                self._accept_dict(state, {"kind": "run.start", "t": t0, "pid": None,
                                          "ppid": None, "cpu": None, "proc": None,
                                          "data": start_data})
                self._selector.register(fd, selectors.EVENT_READ, state)
            else:  # "inject": server-side events, in order
                run_id, events = arg
                target = self._runs.get(run_id)
                if target is None:
                    continue
                for event in events:
                    self._accept_dict(target, event)
                    if event["kind"] == "run.end":  # the last: the run's state goes
                        self._flush(target)
                        del self._runs[run_id]

    def _read(self, state: _RunState) -> None:
        try:
            chunk = os.read(state.fd, READ_SIZE)
        except OSError:
            chunk = b""
        if not chunk:
            self._close_pipe(state)
            self._flush(state)
            self._on_eof(state.run_id)
            return
        buf = state.buf
        buf += chunk
        at = 0
        size = len(buf)
        while size - at >= HEADER.size:
            (n,) = HEADER.unpack_from(buf, at)
            if size - at - HEADER.size < n:
                break
            (t_ns,) = STAMP.unpack_from(buf, at + HEADER.size)
            body = bytes(buf[at + HEADER.size + STAMP.size: at + HEADER.size + n])
            at += HEADER.size + n
            # The JSON starts with {"kind":" (9 bytes): see reporter.encode_frame.
            end = body.find(b'"', 9)
            if not body.startswith(b'{"kind":"') or end < 0:
                self._accept_dict(state, {"kind": "relay.garbled", "t": time.monotonic_ns(),
                                          "pid": None, "ppid": None, "cpu": None,
                                          "proc": None, "data": {"bytes": n}})
                continue
            kind = body[9:end].decode()
            if kind in DECODED:
                try:
                    self._accept(state, t_ns, kind, body, json.loads(body))
                except ValueError:
                    continue
            else:
                self._accept(state, t_ns, kind, body, None)
        del buf[:at]

    def _close_pipe(self, state: _RunState) -> None:
        if state.fd >= 0:
            self._selector.unregister(state.fd)
            os.close(state.fd)
            state.fd = -1

    def _accept_dict(self, state: _RunState, event: dict[str, Any]) -> None:
        """A server-side event (run.start, the sampler's, reaping, run.end)."""
        if event.get("proc") is None and event.get("pid") in state.names:
            event["proc"] = state.names[event["pid"]]
        self._accept(state, event["t"], event["kind"], None, event)

    def _accept(self, state: _RunState, t_ns: int, kind: str, body: bytes | None,
                event: dict[str, Any] | None) -> None:
        """Keep the run's bookkeeping, then stamp. `event` is decoded when kind needs it."""
        if event is not None:
            pid: int = event.get("pid") or 0
            if kind == "proc.start":
                state.names[pid] = event.get("proc") or str(pid)
                if self.on_proc_start is not None:
                    self.on_proc_start(state.run_id, pid)
            elif kind == "proc.exit":
                if pid in state.exited:
                    return  # already known from its parent's proc.reap
                state.exited.add(pid)
            elif kind == "proc.reap":
                child = event["data"].get("child")
                if child not in state.exited:
                    state.exited.add(child)
                    self._stamp(state, t_ns, "proc.exit", None, {
                        "kind": "proc.exit", "pid": child, "ppid": pid, "cpu": None,
                        "proc": state.names.get(child, str(child)),
                        "data": {"exitcode": event["data"].get("exitcode"),
                                 "source": "reaped"}})
            elif kind == "run.result":
                state.result = event["data"].get("result")
            elif kind == "run.error":
                state.error = event["data"].get("traceback")
            elif kind == "run.end":
                for child, name in state.names.items():
                    if child not in state.exited:
                        state.exited.add(child)
                        self._stamp(state, t_ns, "proc.exit", None, {
                            "kind": "proc.exit", "pid": child, "ppid": None, "cpu": None,
                            "proc": name, "data": {"exitcode": None, "source": "unobserved"}})
                event["data"].update(dropped=state.dropped, result=state.result)
                if state.error is not None:
                    event["data"]["error"] = state.error
        if state.seq >= state.max_events and kind not in ALWAYS_KEPT:
            state.dropped += 1
            return
        self._stamp(state, t_ns, kind, body, event)

    def _stamp(self, state: _RunState, t_ns: int, kind: str, body: bytes | None,
               event: dict[str, Any] | None) -> None:
        """Give the event the run's next seq and its time since run.start; frame it once."""
        if body is None:
            assert event is not None
            body = _body(event)
        state.seq += 1
        t = round((t_ns - state.t0) / 1e9, 6)
        out = b'{"run":"%s","seq":%d,"t":%r,%s' % (state.run_id.encode(), state.seq, t,
                                                   body[1:])
        state.pending.append(Event(state.seq, kind, out))

    def _flush(self, state: _RunState) -> None:
        if state.pending:
            batch, state.pending = state.pending, []
            self._deliver(state.run_id, batch)
