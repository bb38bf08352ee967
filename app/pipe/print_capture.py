"""sys.stdout and sys.stderr of a run's process: each line it prints becomes a `print` event.

Runs in every process of a run (armed by app.pipe.reporter). Standard library only, like
the reporter: spawned children re-import it. Each capture is given the reporter's `emit`,
so that this module imports nothing of procscope.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

Emit = Callable[..., None]


class LineCapture(io.TextIOBase):
    """sys.stdout / sys.stderr of a run's process: each line becomes a `print` event."""

    def __init__(self, stream: str, emit: Emit) -> None:
        self.stream = stream
        self._send = emit
        self.reset()

    def reset(self) -> None:
        """As new: no partial line, a lock nobody holds."""
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            if "\n" not in self._partial:
                return len(text)
            *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._partial = self._partial, ""
        if line:
            self._emit(line)

    def _emit(self, line: str) -> None:
        if self.stream == "stdout":
            self._send("print", text=line)
        else:
            self._send("print", text=line, stream="stderr")


class EchoingCapture(LineCapture):
    """LineCapture that also writes everything, unchanged and at once, to the stream it
    replaces (`procscope trace`: the program's terminal output stays what it was).

    The replaced stream's identity (fileno, isatty, encoding, buffer) is kept too: programs
    (and faulthandler, and unittest) ask sys.stdout and sys.stderr for them.
    """

    def __init__(self, stream: str, emit: Emit, echo: Any) -> None:
        super().__init__(stream, emit)
        # A fork child inherits its parent's capture: echo to what that one echoes to.
        self.echo: Any = echo.echo if isinstance(echo, EchoingCapture) else echo

    def write(self, text: str) -> int:
        if self.echo is not None:
            self.echo.write(text)
        return super().write(text)

    def flush(self) -> None:
        super().flush()
        if self.echo is not None:
            self.echo.flush()

    def fileno(self) -> int:
        if self.echo is None:
            return super().fileno()
        return int(self.echo.fileno())

    def isatty(self) -> bool:
        return self.echo is not None and bool(self.echo.isatty())

    @property
    def encoding(self) -> Any:  # type: ignore[override]
        return getattr(self.echo, "encoding", "utf-8")

    @property
    def errors(self) -> Any:  # type: ignore[override]
        return getattr(self.echo, "errors", "strict")

    @property
    def buffer(self) -> Any:
        return self.echo.buffer

    def __getattr__(self, name: str) -> Any:
        # line_buffering, reconfigure, mode, name ...: whatever the real stream has.
        if name == "echo":
            raise AttributeError(name)
        return getattr(self.echo, name)


def capture(stream: str, current: Any, echo: bool, emit: Emit) -> LineCapture:
    """The capture of `stream` for this process: a fork child's inherited one, reset.

    A fork child inherits its parent's capture object: it is made new in place (no
    partial line, which was the parent's; a new lock, which another thread of the parent
    may have held at the fork) rather than replaced, which in a fresh fork child costs
    ~10 more copy-on-write page faults (~40 µs) for the two objects and their classes.
    """
    wanted = EchoingCapture if echo else LineCapture
    if type(current) is wanted and current.stream == stream:
        current.reset()
        return current
    return EchoingCapture(stream, emit, current) if echo else LineCapture(stream, emit)
