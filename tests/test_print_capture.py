"""A fork child's print capture (app.pipe.print_capture.capture): the one it inherited, made
as new only when it must be (its parent's partial line, or a lock another thread of the
parent held at the fork), so that each line the child prints is its own and never waits.

Real fork children (os.fork), each line they print read back from a real pipe.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from procscope.pipe.print_capture import LineCapture, capture


def _in_a_fork_child(inherited: LineCapture, write_fd: int) -> int:
    """Fork; the child takes up `inherited` as the reporter does, prints one line and
    exits; the parent waits for it. Its pid."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            mine = capture("stdout", inherited, False, _emit_to(write_fd))
            mine.write("own line\n")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _emit_to(fd: int) -> Any:
    def emit(kind: str, **data: Any) -> None:
        os.write(fd, (data["text"] + "\n").encode())
    return emit


def _lines(read_fd: int) -> list[str]:
    return os.read(read_fd, 65536).decode().splitlines()


def test_the_child_prints_its_own_line_not_its_parents_partial_one() -> None:
    read_fd, write_fd = os.pipe()
    try:
        parent = LineCapture("stdout", _emit_to(write_fd))
        parent.write("the parent's half")  # no newline yet
        _in_a_fork_child(parent, write_fd)
        assert _lines(read_fd) == ["own line"]
        parent.write(" and the rest\n")
        assert _lines(read_fd) == ["the parent's half and the rest"]
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_the_child_prints_though_another_thread_held_the_lock_at_the_fork() -> None:
    read_fd, write_fd = os.pipe()
    parent = LineCapture("stdout", _emit_to(write_fd))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with parent._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        _in_a_fork_child(parent, write_fd)
        assert _lines(read_fd) == ["own line"]
    finally:
        release.set()
        holder.join()
        os.close(read_fd)
        os.close(write_fd)


def test_a_clean_inherited_capture_is_kept_as_it_is() -> None:
    read_fd, write_fd = os.pipe()
    try:
        parent = LineCapture("stdout", _emit_to(write_fd))
        lock = parent._lock
        assert capture("stdout", parent, False, _emit_to(write_fd)) is parent
        assert parent._lock is lock
        _in_a_fork_child(parent, write_fd)
        assert _lines(read_fd) == ["own line"]
    finally:
        os.close(read_fd)
        os.close(write_fd)
