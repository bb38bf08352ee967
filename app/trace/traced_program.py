"""The program `procscope trace` runs: started as `python` would start it, waited for, and
given the terminal, the signals and the exit status it would have had without procscope.

Runs in the `procscope trace` process (the user's terminal). The program is
`sys.executable script.py args...` (or `-m module`, `-c code`) itself; app/trace/trace_site is put
first on its PYTHONPATH, whose sitecustomize arms the reporter (app.trace.tracer) and takes
itself away again.

Process groups, and why: the program runs in a process group of its own (setpgid in the
child, before exec), so that a server's cancel (SIGTERM then SIGKILL to the group) reaches
every process of the program and never `procscope trace` itself. Not in a session of its
own: setsid() would take the terminal from it, and Ctrl-C with it. Instead, when we are
the terminal's foreground group, we make the program's group the foreground one
(tcsetpgrp), so that Ctrl-C, Ctrl-\\ and reads of stdin reach the program exactly as they
would without procscope (the whole group, first hand), and we take the terminal back when
it ends (or stops: Ctrl-Z stops us too, and `fg` gives it back). Signals sent to us
instead (SIGINT to our group without a terminal, SIGTERM, SIGHUP, SIGQUIT) are forwarded
to the program's group. The program's exit status is ours: its exit code, or death by the
same signal.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from procscope.resources import TRACE_SITE
from procscope.trace.tracer import ENV, ENV_PYTHONPATH

SITE_DIR = str(TRACE_SITE)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class TracedProgram:
    """One program under `procscope trace`: start() it at its gate, go(), wait()."""

    def __init__(self, argv: list[str], channel_fd: int) -> None:
        self.argv = argv
        self.channel_fd = channel_fd
        self.proc: subprocess.Popen[bytes] | None = None
        self._gate: int | None = None
        self._tty: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the program; it waits at its gate (before any of its code) for go()."""
        self._forward_signals()
        gate_r, self._gate = os.pipe()
        env = dict(os.environ)
        env[ENV] = f"{self.channel_fd},{gate_r},{SITE_DIR}"
        if "PYTHONPATH" in env:
            env[ENV_PYTHONPATH] = env["PYTHONPATH"]
            env["PYTHONPATH"] = SITE_DIR + os.pathsep + env["PYTHONPATH"]
        else:
            env["PYTHONPATH"] = SITE_DIR
        try:
            self.proc = subprocess.Popen(self.argv, env=env, process_group=0,
                                         pass_fds=(self.channel_fd, gate_r))
        finally:
            os.close(gate_r)
        self._take_foreground()

    def go(self, ok: bool = True) -> None:
        """Open the gate (or, not ok, close it: the program exits before its first line)."""
        assert self._gate is not None
        with contextlib.suppress(OSError):
            if ok:
                os.write(self._gate, b"1")
        os.close(self._gate)
        self._gate = None

    def wait(self) -> int:
        """Wait for the program's main to exit: its exit code (negative: killed by signal)."""
        assert self.proc is not None
        while True:
            _, status = os.waitpid(self.proc.pid, os.WUNTRACED)
            if not os.WIFSTOPPED(status):
                break
            # Ctrl-Z (or SIGSTOP) stopped the program: stop as a job, as `python` would;
            # when the shell continues us (fg, bg), continue it.
            self._give_back_foreground()
            os.kill(os.getpid(), signal.SIGSTOP)
            self._take_foreground()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGCONT)
        self.proc.returncode = code = os.waitstatus_to_exitcode(status)
        self._give_back_foreground()
        return code

    def restore_signals(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    # --- signals and the terminal ---

    def _forward_signals(self) -> None:
        for signum in FORWARDED:
            previous = signal.getsignal(signum)
            if previous == signal.SIG_IGN:
                # Ignored when we were started (nohup, `&` without job control): the
                # program inherits that, as it would have.
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._forward)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signum)

    def _take_foreground(self) -> None:
        """Give the terminal to the program's group, if it was ours."""
        if self._tty is None:
            try:
                fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError:
                return  # no controlling terminal: signals are forwarded instead
            try:
                if os.tcgetpgrp(fd) != os.getpgrp():
                    os.close(fd)  # we are in the background: the terminal is not ours
                    return
            except OSError:
                os.close(fd)
                return
            self._tty = fd
        assert self.proc is not None
        _set_foreground(self._tty, self.proc.pid)

    def _give_back_foreground(self) -> None:
        if self._tty is not None:
            _set_foreground(self._tty, os.getpgrp())


def _set_foreground(tty: int, pgid: int) -> None:
    # From a background group, tcsetpgrp() raises SIGTTOU unless it is blocked (blocked,
    # not ignored: an ignored signal would be inherited by the program).
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(tty, pgid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def exit_like(code: int) -> int:
    """Leave as the program left: return its exit code, or die by the signal that killed
    it (so that a shell sees the same status). Returns only if that signal did not kill."""
    if code >= 0:
        return code
    sig = -code
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the program's core, not ours
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
    return 128 + sig
