"""The relay: one thread that reads every run's event pipe and stamps the events.

Runs in the server (or `procscope run`), in its own thread. Modelled on
logging.handlers.QueueListener: a loop over a selector, stopped by a sentinel, joined.

    run pipes (one per run) ─┐
    wake pipe (commands) ────┴─► selector ─► split frames ─► ledger ─► stamp ─► deliver(run, batch)

Stamping here, in one thread, is what makes `seq` gap-free per run: pipe events, the
server's own events (`inject`) and the run's last events (`end`) all pass through
`_accept`. What the lifecycle events mean (a stand-in proc.exit for a killed process, the
whole run.end) is the run's ledger's business (app.pipe.ledger); the relay only keeps order.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from procscope.pipe import framing
from procscope.pipe.events import (
    ALWAYS_KEPT,
    DECODED,
    STAMPED,
    Event,
    body_of,
    event_head,
    server_event,
    stamp,
)
from procscope.pipe.ledger import Ledger
from procscope.worker_thread import Wakeup, WorkerThread

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20  # room for a 100-process start burst while the relay is busy
READ_SIZE = 1 << 18
# A round that read a flood (NAP_AFTER bytes or more, or NAP_MIN bytes or more at NAP_RATE
# bytes/s or more since the round before) is followed by a nap of NAP_S, during which
# writers' bytes only queue in the pipe (no wake-up of this thread per write) and the next
# round reads them as one batch. Invariants: NAP_S stays under the streams' flush interval
# (app.streams.fanout.FLUSH_INTERVAL), PIPE_SIZE holds more than a nap's worth of the
# fastest flood, and a slow run (a start burst) stays below both thresholds.
NAP_S = 0.002
NAP_AFTER = 32768  # bytes, ~200 events in one read
NAP_MIN = 2048  # bytes, ~18 events
NAP_RATE = 4e6  # bytes a second, ~35,000 events

MAX_KINDS = 1024  # kinds whose header a run caches (lessons add kinds freely)
FRAME_SIZE, HEADER_SIZE, STAMP_SIZE = framing.FRAME.size, framing.HEADER.size, framing.STAMP.size

Deliver = Callable[[str, list[Event]], None]


# The relay thread's commands, from the threads that call Relay's methods.
@dataclass(frozen=True, slots=True)
class _Add:
    run_id: str
    fd: int
    t0: int
    start_data: dict[str, Any]
    max_events: int


@dataclass(frozen=True, slots=True)
class _Resume:
    run_id: str
    seq: int
    t0: int
    ledger: Ledger


@dataclass(frozen=True, slots=True)
class _Inject:
    run_id: str
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _End:
    run_id: str
    stop_reason: str | None
    exitcode: int | None


@dataclass(frozen=True, slots=True)
class _Stop:
    pass


_Command = _Add | _Resume | _Inject | _End | _Stop


@dataclass
class _RunState:
    run_id: str
    fd: int
    t0: int
    max_events: int
    seq: int = 0
    buf: bytearray = field(default_factory=bytearray)
    ledger: Ledger = field(default_factory=Ledger)
    pending: list[Event] = field(default_factory=list)
    # a kind's JSON text -> (kind, SSE header up to the seq, decoded?, where data starts
    # less the seq's digits): Relay._stamp_frames
    heads: dict[bytes, tuple[str, bytes, bool, int]] = field(default_factory=dict)


class Relay:
    """Reads all run pipes in one thread; hands stamped batches to `deliver`."""

    def __init__(self, deliver: Deliver, on_eof: Callable[[str], None],
                 on_proc_start: Callable[[str, int], None] | None = None,
                 hidden: str | None = None) -> None:
        """`hidden`: the server's token. No process of a run can read it (app.secret_token);
        should a program print it all the same (it read the teacher's token file, say),
        every event has it as that many `*` (the same length: each frame's length and
        JSON stay whole), so it is in no log, stream, history or export."""
        self._hidden = (hidden.encode(), b"*" * len(hidden.encode())) if hidden else None
        self._deliver = deliver
        self.on_proc_start = on_proc_start
        self._on_eof = on_eof
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._wakeup = Wakeup()
        self._selector = selectors.DefaultSelector()
        self._runs: dict[str, _RunState] = {}
        self._thread = WorkerThread("procscope-relay", self._loop)

    # --- called from other threads ---

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop on a sentinel, join, clear the handle."""
        if self._thread.stop(lambda: self._command(_Stop())):
            self._selector.close()
            self._wakeup.close()

    def add(self, run_id: str, read_fd: int, t0: int, start_data: dict[str, Any],
            max_events: int = 1_000_000) -> None:
        """Follow a new run's pipe; its `run.start` (seq 1, t 0) is stamped first."""
        self._command(_Add(run_id, read_fd, t0, start_data, max_events))

    def resume(self, run_id: str, seq: int, t0: int, ledger: Ledger) -> None:
        """Take up a run that a server which died left unended (no pipe: it is only to be
        ended): its seqs go on after `seq`, `ledger` knows what its log says so far."""
        self._command(_Resume(run_id, seq, t0, ledger))

    def inject(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """Server-side events (app.pipe.events.server_event) into a run's log, in order."""
        self._command(_Inject(run_id, events))

    def end(self, run_id: str, stop_reason: str | None, exitcode: int | None) -> None:
        """The run is over: its ledger's last events, run.end last; the run is forgotten."""
        self._command(_End(run_id, stop_reason, exitcode))

    def _command(self, command: _Command) -> None:
        self._commands.put(command)
        self._wakeup.wake()

    # --- the relay thread ---

    def _loop(self) -> None:
        self._selector.register(self._wakeup, selectors.EVENT_READ, None)
        since = time.monotonic()  # the end of the round before
        while True:
            read = 0
            for key, _ in self._selector.select():
                state: _RunState | None = key.data
                if state is None:
                    self._wakeup.clear()
                    if not self._run_commands():
                        return
                else:
                    read += self._read(state)
            for state in list(self._runs.values()):
                self._flush(state)
            now = time.monotonic()
            if read >= NAP_AFTER or (read >= NAP_MIN and read >= (now - since) * NAP_RATE):
                time.sleep(NAP_S)  # see NAP_S: the writers' wake-ups are the cost
                now = time.monotonic()
            since = now

    def _run_commands(self) -> bool:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return True
            match command:
                case _Stop():
                    for state in self._runs.values():
                        self._close_pipe(state)
                    return False
                case _Add(run_id, fd, t0, start_data, max_events):
                    self._add(run_id, fd, t0, start_data, max_events)
                case _Resume(run_id, seq, t0, ledger):
                    self._runs[run_id] = _RunState(run_id, -1, t0, 0, seq=seq, ledger=ledger)
                case _Inject(run_id, events) if (target := self._runs.get(run_id)):
                    for event in events:
                        self._accept_dict(target, event)
                case _End(run_id, stop_reason, exitcode) if (target := self._runs.get(run_id)):
                    for event in target.ledger.end(time.monotonic_ns(), stop_reason, exitcode):
                        self._accept_dict(target, event)
                    self._flush(target)
                    del self._runs[run_id]

    def _add(self, run_id: str, fd: int, t0: int, start_data: dict[str, Any],
             max_events: int) -> None:
        with contextlib.suppress(OSError):  # a smaller pipe still works, only less slack
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        state = _RunState(run_id, fd, t0, max_events)
        self._runs[run_id] = state
        self._accept_dict(state, server_event("run.start", start_data, t_ns=t0))
        self._selector.register(fd, selectors.EVENT_READ, state)

    def _read(self, state: _RunState) -> int:
        """Read what the run's pipe holds and stamp its events; the bytes read."""
        try:
            chunk = os.read(state.fd, READ_SIZE)
        except OSError:
            chunk = b""
        if not chunk:
            self._close_pipe(state)
            self._flush(state)
            self._on_eof(state.run_id)
            return 0
        if state.buf:
            state.buf += chunk
            data = bytes(state.buf)
        else:
            data = chunk
        if self._hidden is not None and self._hidden[0] in data:
            data = data.replace(*self._hidden)  # an unfinished frame's part: next round
        used = self._stamp_frames(state, data)
        state.buf = bytearray(data[used:])
        return len(chunk)

    def _stamp_frames(self, state: _RunState, data: bytes) -> int:
        """Stamp the whole frames at the start of `data` (app.pipe.framing); the bytes used.

        The relay's hot path, once per event: what splitting the frames, framing.kind_of,
        events.stamp and _accept do, inline in one loop for the events that are only
        passed on (the most of them), with each kind's head (events.event_head) cached per
        run and the frame made from events.STAMPED, as stamp makes it (byte for byte:
        tests/test_relay_stamp.py). Lifecycle kinds, garbled frames and events past the
        cap take the general way (_accept).
        """
        unpack, find, startswith = framing.FRAME.unpack_from, data.find, data.startswith
        prefix, prefix_end = framing.KIND_PREFIX, len(framing.KIND_PREFIX)
        heads, pending, t0, cap = state.heads, state.pending, state.t0, state.max_events
        new_event, seq, stamped = Event.__new__, state.seq, STAMPED
        size, at = len(data), 0
        while size - at >= FRAME_SIZE:
            n, t_ns = unpack(data, at)
            end = at + HEADER_SIZE + n
            if end > size:
                break
            body = at + FRAME_SIZE
            if n < STAMP_SIZE:
                end = size  # a length no writer makes: nothing after it can be trusted
            quote = find(b'"', body + prefix_end, end) if startswith(prefix, body) else -1
            head = heads.get(data[body + prefix_end:quote]) if quote >= 0 else None
            if head is None or head[2] or seq >= cap:
                state.seq = seq
                self._accept_frame(state, t_ns, data[body:end])
                seq = state.seq
                at = end
                continue
            seq += 1
            t = (t_ns - t0) / 1e9
            if t >= 1e-4:  # the text repr(round(t, 6)) gives, at a third of its cost
                t_text = (b"%.6f" % t).rstrip(b"0")
                if t_text[-1] == 46:  # "2." -> "2.0"
                    t_text += b"0"
            else:  # where repr() writes an exponent (5e-05)
                t_text = repr(round(t, 6)).encode()
            seq_text = b"%d" % seq
            event = new_event(Event)
            event.seq, event.kind, event._obj = seq, head[0], None
            event.frame = stamped % (seq_text, head[1], seq_text, t_text, data[body + 1:end])
            event.data_at = head[3] + len(seq_text)
            pending.append(event)
            at = end
        state.seq = seq
        return at

    def _accept_frame(self, state: _RunState, t_ns: int, body: bytes) -> None:
        """One frame the general way: a lifecycle kind decoded, a garbled one reported, one
        past the cap counted; a kind not seen before in this run gets its cached header."""
        kind = framing.kind_of(body)
        if kind is None:
            self._accept_dict(state, server_event(
                "relay.garbled", {"bytes": len(body)}, t_ns=time.monotonic_ns()))
            return
        kind_json = body[len(framing.KIND_PREFIX):body.find(b'"', len(framing.KIND_PREFIX))]
        if kind_json not in state.heads and len(state.heads) < MAX_KINDS:
            state.heads[kind_json] = event_head(state.run_id, kind)
        if kind in DECODED:
            try:
                event = json.loads(body)
            except ValueError:
                return
            self._accept(state, t_ns, kind, body, event)
        else:
            self._accept(state, t_ns, kind, body, None)

    def _close_pipe(self, state: _RunState) -> None:
        if state.fd >= 0:
            self._selector.unregister(state.fd)
            os.close(state.fd)
            state.fd = -1

    def _accept_dict(self, state: _RunState, event: dict[str, Any]) -> None:
        """A server-side event: it is named after its process, if the run knows it."""
        if event.get("proc") is None:
            event["proc"] = state.ledger.name(event.get("pid"))
        self._accept(state, event["t"], event["kind"], None, event)

    def _accept(self, state: _RunState, t_ns: int, kind: str, body: bytes | None,
                event: dict[str, Any] | None) -> None:
        """Show a decoded event to the ledger, keep the cap, then stamp."""
        if event is not None:
            keep, before = state.ledger.note(kind, event, t_ns)
            for extra in before:
                self._stamp(state, t_ns, extra["kind"], None, extra)
            if not keep:
                return
            if kind == "proc.start" and self.on_proc_start is not None:
                self.on_proc_start(state.run_id, event.get("pid") or 0)
        if state.seq >= state.max_events and kind not in ALWAYS_KEPT:
            state.ledger.dropped += 1
            return
        self._stamp(state, t_ns, kind, body, event)

    def _stamp(self, state: _RunState, t_ns: int, kind: str, body: bytes | None,
               event: dict[str, Any] | None) -> None:
        """Give the event the run's next seq and its time since run.start; frame it once."""
        if body is None:
            assert event is not None
            body = body_of(event)
            if self._hidden is not None and self._hidden[0] in body:
                body = body.replace(*self._hidden)
        state.seq += 1
        state.pending.append(stamp(state.run_id, state.seq, round((t_ns - state.t0) / 1e9, 6),
                                   kind, body))

    def _flush(self, state: _RunState) -> None:
        if state.pending:
            batch, state.pending = state.pending, []
            self._deliver(state.run_id, batch)
