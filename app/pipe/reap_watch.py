"""`proc.reap`: the moment a process of a run collects a child's exit status.

Runs in every process of a run (armed by app.pipe.reporter, once per process). Standard
library only, like the reporter; it is given the reporter's `emit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

_watching = False


def watch_reaping(emit: Callable[..., None]) -> None:
    """Report `proc.reap` when this process collects a child's exit status.

    multiprocessing learns a child's exit code in Popen.poll() (join, is_alive, exitcode
    and Pool's maintenance all go through it). Wrapping it is the only way to see the
    moment a zombie stops being one, and the real exit code of a child killed by a
    signal, which that child can never report itself.
    """
    global _watching
    if _watching:
        return
    _watching = True
    from multiprocessing import popen_fork

    classes: list[type] = [popen_fork.Popen]
    try:
        from multiprocessing import popen_forkserver

        classes.append(popen_forkserver.Popen)
    except ImportError:  # pragma: no cover
        pass
    for cls in classes:
        original = cls.__dict__["poll"]

        def poll(self: Any, flag: int = os.WNOHANG, _original: Any = original) -> Any:
            before = self.returncode
            code = _original(self, flag)
            if before is None and code is not None:
                emit("proc.reap", child=self.pid, exitcode=code)
            return code

        cls.poll = poll  # type: ignore[attr-defined]
