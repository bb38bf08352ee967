"""The reporter: how every process of a run tells the server what it does.

Runs in every process of a run: the experiment's main process and all its descendants,
whatever the start method. It is the only module of `app` that experiments import, so it
imports nothing but the standard library and app.pipe.framing (spawned children re-import it,
and importing the web stack would cost each one a fifth of a second).

How a process gets its channel, for each start method::

    server ── spawns the experiment main with the Channel as an argument
         │ spawn / forkserver: Channel.__reduce__ ships the fd with multiprocessing's own
         │   DupFd; unpickling registers the after-fork hook and arms it for this process
         ▼
    any process of the run: _on_child_start() ── the Channel goes into
         │   current_process()._config (every Process copies it); proc.start;
         │   stdout/stderr captured as print events; run() wrapped for the exit code
         │ fork: the child inherits the fd and the hook; _bootstrap runs the hook
         │ spawn / forkserver: _config is pickled with the process object: as above
         ▼
    proc.exit, last, from a finalizer that runs after the process has joined its children

Every event is one frame (app.pipe.framing: length, monotonic time, JSON) written with one
os.write() of at most PIPE_BUF bytes, which Linux makes atomic: no lock is shared between
processes, so a process killed at any instant cannot wedge the others.

Beside it, as standard-library-only as it is, and given its emit(): the print capture
(app.pipe.print_capture) and the reaping watch (app.pipe.reap_watch).
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import sys
import threading
import time
import traceback
from multiprocessing import context, reduction, util
from multiprocessing import process as mp_process
from typing import Any

from procscope.pipe.framing import FRAME, PIPE_BUF, STAMP, data_json, encode_frame, to_json
from procscope.pipe.print_capture import LineCapture, capture
from procscope.pipe.reap_watch import watch_reaping

CONFIG_KEY = "procscope_channel"

_sched_getcpu: Any = None
try:
    _sched_getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
    _sched_getcpu.restype = ctypes.c_int
    _sched_getcpu.argtypes = []
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _sched_getcpu = None


def current_cpu() -> int | None:
    """The core this thread runs on right now (sched_getcpu, ~0.1 µs), or None."""
    if _sched_getcpu is None:
        return None
    cpu = int(_sched_getcpu())
    return cpu if cpu >= 0 else None


class Channel:
    """The write end of one run's event pipe, as held by one process of the run."""

    def __init__(self, fd: int, echo: bool = False, prims: bool = False) -> None:
        self.fd = fd
        self.broken = False
        # `procscope trace`: prints become events AND still reach the real stdout/stderr.
        self.echo = echo
        # multiprocessing's primitives report what they do (app.pipe.prims), in every
        # process that holds this channel: `procscope trace`, a lesson whose spec asks.
        self.prims = prims

    @classmethod
    def open(cls) -> tuple[int, Channel]:
        """A new run pipe: (read fd for the relay, write end to hand to the run)."""
        read_fd, write_fd = os.pipe()
        return read_fd, cls(write_fd)

    def write(self, frame: bytes) -> None:
        if self.broken:
            return
        try:
            os.write(self.fd, frame)  # <= PIPE_BUF: atomic, all or nothing
        except OSError:
            # The server went away (EPIPE) or the fd was closed: nobody is listening,
            # and the lesson must go on as it would without procscope.
            self.broken = True

    def __reduce__(self) -> tuple[Any, ...]:
        # Only meaningful while multiprocessing is spawning a child (spawn / forkserver):
        # DupFd then adds the fd to what the child inherits.
        return _rebuild_channel, (reduction.DupFd(self.fd), self.echo, self.prims)


def _rebuild_channel(dupfd: Any, echo: bool = False, prims: bool = False) -> Channel:
    """Runs in a spawned or forkserver child, while its Process object is unpickled."""
    global _spawned_channel
    channel = Channel(dupfd.detach(), echo, prims)
    # Before the rest of the Process object (its args, a Pool's initargs) is unpickled:
    # _config, and in it this channel, comes first.
    _install_prims(channel)
    # For the fork children this process may start later.
    util.register_after_fork(channel, _on_child_start)
    # For this process itself: spawn and forkserver children do not run the after-fork
    # hooks (their Process classes' _after_fork is a no-op), but _bootstrap still calls
    # it once the process object is current and before run(): the moment we need.
    _spawned_channel = channel
    for cls in (context.SpawnProcess, context.ForkServerProcess):
        # setattr: _after_fork is private to multiprocessing, and its stubs do not have it.
        setattr(cls, "_after_fork", staticmethod(_after_spawn))  # noqa: B010
    return channel


_spawned_channel: Channel | None = None


def _after_spawn() -> None:
    if _spawned_channel is not None and _channel is None:
        _on_child_start(_spawned_channel)


# --- per-process state ----------------------------------------------------------------

_channel: Channel | None = None
_exitcode: int | None = None


def emit(kind: str, **data: Any) -> None:
    """Report one event from this process (and thread). A no-op outside a run."""
    if _channel is not None:
        emit_json(kind, data_json(data) if data else "{}")


def emit_json(kind: str, data: str) -> None:
    """emit() of data given as its JSON text (an object, as data_json writes it): the
    instrumented primitives' hot path, which encodes each object's constant part once and
    formats only what changes. A no-op outside a run."""
    channel = _channel
    if channel is None:
        return
    t_ns = _monotonic_ns()
    # The hot path of every event: the JSON is put together from pieces cached per
    # process (~3 µs less than encoding a dict), in the shape app.pipe.events documents and
    # encode_frame makes: "kind" first, then pid, ppid, cpu, proc, [tid, thread,] data.
    # The pid is cached too (reset after any fork); the ppid is not: an orphan's changes.
    # The process's name is read from multiprocessing's own attribute (the `name`
    # property would be one more call per event), and compared each time: a lesson may
    # rename its process. The functions it calls are module globals (one look-up each).
    name = mp_process._current_process._name  # type: ignore[attr-defined]
    if _get_ident() != _main_ident:
        after_cpu = _thread_part(name)
    elif name == _proc[0]:
        after_cpu = _proc[1]
    else:
        _proc[:] = [name, ',"proc":%s,"data":' % to_json(name)]
        after_cpu = _proc[1]
    cpu = _sched_getcpu() if _sched_getcpu is not None else -1
    # An f-string, not %: ~15 % fewer instructions (no format string parsed per call).
    body = (f'{_heads.get(kind) or _head(kind)}{_getppid()},'
            f'"cpu":{"null" if cpu < 0 else cpu}{after_cpu}{data}}}').encode("utf-8", "replace")
    if len(body) + FRAME.size > PIPE_BUF:
        channel.write(encode_frame(t_ns, json.loads(body)))  # truncates and marks
        return
    if not channel.broken:  # Channel.write, inline: one call fewer per event
        try:
            _write(channel.fd, _pack(len(body) + STAMP.size, t_ns) + body)
        except OSError:
            channel.broken = True


def _thread_part(name: str) -> str:
    """What follows "cpu" in an event of a thread other than the main one."""
    return ',"proc":%s,"tid":%d,"thread":%s,"data":' % (
        to_json(name), threading.get_native_id(), to_json(threading.current_thread().name))


_pack = FRAME.pack
_monotonic_ns, _getppid, _write, _get_ident = (time.monotonic_ns, os.getppid, os.write,
                                               threading.get_ident)
_pid = os.getpid()
_main_ident = threading.main_thread().ident


def _after_fork_in_child() -> None:
    global _pid, _main_ident, _heads
    _pid = os.getpid()
    _main_ident = threading.main_thread().ident
    _heads = {}  # a new dict, not the parent's cleared: its pages stay shared


os.register_at_fork(after_in_child=_after_fork_in_child)


_proc: list[str] = ["", ""]  # this process's name, and what follows "cpu" in its events
_kinds: dict[str, str] = {}  # a kind -> its JSON (a fork child inherits them)
_heads: dict[str, str] = {}  # a kind -> '{"kind":<its JSON>,"pid":<this pid>,"ppid":'


def _head(kind: str) -> str:
    kind_json = _kinds.get(kind)
    if kind_json is None:
        kind_json = _kinds[kind] = to_json(str(kind))
    head = _heads[kind] = '{"kind":%s,"pid":%d,"ppid":' % (kind_json, _pid)
    return head


def role_of(process: multiprocessing.process.BaseProcess) -> str:
    """The role shown on the page: daemon, pool, or the name's prefix (buyer-3 -> buyer)."""
    name = process.name
    if "PoolWorker" in name:  # before daemon: Pool's workers are daemonic too
        return "pool"
    if process.daemon:
        return "daemon"
    prefix = name.split("-", 1)[0]
    if prefix.endswith("Process") or not prefix:
        return "worker"
    return prefix.lower()


def _on_child_start(channel: Channel) -> None:
    """Runs in each new process of the run, from multiprocessing's _bootstrap."""
    process = multiprocessing.current_process()
    _start_reporting(channel, role_of(process))
    original_run = process.run

    def run() -> None:
        global _exitcode
        try:
            original_run()
            _exitcode = 0
        except SystemExit as e:
            code = e.code
            _exitcode = code if isinstance(code, int) else (0 if code is None else 1)
            raise
        except BaseException as e:
            _exitcode = 1
            emit("error", type=type(e).__name__, message=str(e),
                 traceback=traceback.format_exc())
            raise

    process.run = run  # type: ignore[method-assign]


def _start_reporting(channel: Channel, role: str, report_exit: bool = True) -> None:
    global _channel, _exitcode
    _channel = channel
    _exitcode = None
    # Every Process created from here on copies _config, and with it the channel.
    multiprocessing.current_process()._config[CONFIG_KEY] = channel  # type: ignore[attr-defined]
    watch_reaping(emit)
    sys.stdout = capture("stdout", sys.stdout, channel.echo, emit)
    sys.stderr = capture("stderr", sys.stderr, channel.echo, emit)
    process = multiprocessing.current_process()
    emit("proc.start", role=role, name=process.name, daemon=bool(process.daemon))
    _arm_prims(channel)
    if report_exit:
        # Last of the exit finalizers: after multiprocessing has joined this process's own
        # non-daemonic children, so the timeline shows when the process really ends.
        util.Finalize(None, _report_exit, exitpriority=-(2**30))


def arm_traced_main(channel: Channel) -> None:
    """Runs in the main process of a program under `procscope trace`, before its code.

    No proc.exit of its own: the main's exit code is known only to whoever waits for it
    (a SystemExit, an uncaught exception, a signal), so `procscope trace` reports it.
    """
    util.register_after_fork(channel, _on_child_start)  # fork children; spawn: DupFd
    _start_reporting(channel, "main", report_exit=False)


def arm_prims(channel: Channel) -> None:
    """Runs in a lesson's main process whose spec asks for it: this process's primitives,
    and those of every process it starts from now on, report what they do."""
    channel.prims = True
    _arm_prims(channel)


def _install_prims(channel: Channel) -> None:
    if channel.prims:
        from procscope.pipe import prims  # only the runs that ask for it import it

        prims.install(emit, emit_json)


def _arm_prims(channel: Channel) -> None:
    if channel.prims:
        from procscope.pipe import prims

        prims.install(emit, emit_json)
        # Just before proc.exit: what was counted and not sent (prims.tally).
        util.Finalize(None, prims.at_exit, exitpriority=-(2**30) + 1)


def _report_exit() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, LineCapture):
            stream.flush()
    emit("proc.exit", exitcode=_exitcode, source="self", cpu_time=time.process_time())


class Reporter:
    """What an experiment's main() gets: emit events and read the common knobs."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale

    def emit(self, kind: str, **data: Any) -> None:
        emit(kind, **data)

    def sleep(self, seconds: float) -> None:
        """Sleep a lesson's `seconds`, scaled by the run's time_scale."""
        time.sleep(seconds * self.time_scale)
