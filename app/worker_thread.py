"""The server's worker threads (relay, sampler, history writer, Redis link): started once,
stopped by their owner's sentinel, joined, the handle cleared; and the wake-up of a thread
that sleeps in a selector.

Runs in the server (or `procscope run`), in the thread that owns the worker.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable


class WorkerThread:
    """One named daemon thread running `target`; stop() tells it to end, then joins it."""

    def __init__(self, name: str, target: Callable[[], object]) -> None:
        self.name = name
        self._target = target
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def native_id(self) -> int | None:
        """The running thread's id in the kernel (None while it is not running)."""
        return None if self._thread is None else self._thread.native_id

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        # daemon: a server that dies without stop() must not hang on it at exit.
        self._thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, sentinel: Callable[[], object], timeout: float | None = None) -> bool:
        """Call `sentinel` (which makes the thread's loop return), join (for `timeout` at
        most: a daemon thread left hanging then dies with the process), clear the handle;
        False if it was not running (nothing was called)."""
        thread = self._thread
        if thread is None:
            return False
        sentinel()
        thread.join(timeout)
        self._thread = None
        return True


class Wakeup:
    """A pipe a selector watches: wake() from any thread ends the owner's select().

    As concurrent.futures.process._ThreadWakeup: the write end is non-blocking, and a full
    pipe is fine, because then the owner is awake anyway."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)

    def fileno(self) -> int:
        return self._r

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._w, b"x")

    def clear(self) -> None:
        """In the owner's thread, after select() said it is readable."""
        os.read(self._r, 4096)

    def close(self) -> None:
        for fd in (self._r, self._w):
            os.close(fd)
