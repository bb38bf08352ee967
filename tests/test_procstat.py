"""Unit tests for parsing /proc/<pid>/stat (app.kernel.procgroup.parse_stat)."""

from __future__ import annotations

import os
import threading

import psutil

from procscope.kernel.procgroup import parse_stat, read_stat


def stat_line(comm: str, state: str = "S", ppid: int = 1, pgrp: int = 40, utime: int = 7,
              stime: int = 3, threads: int = 2, processor: int = 1) -> bytes:
    # pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
    # processor is field 39.
    fields = [state, str(ppid), str(pgrp)] + ["0"] * 8 + [str(utime), str(stime)] + \
        ["0"] * 4 + [str(threads)] + ["0"] * 18 + [str(processor)] + ["0"] * 13
    return f"4242 ({comm}) ".encode() + " ".join(fields).encode() + b"\n"


def test_fields_by_position() -> None:
    stat = parse_stat(stat_line("python3"))
    assert stat is not None
    assert (stat.pid, stat.state, stat.ppid, stat.pgrp) == (4242, "S", 1, 40)
    assert (stat.utime, stat.stime, stat.num_threads, stat.processor) == (7, 3, 2, 1)


def test_a_command_name_with_spaces_and_parentheses() -> None:
    # comm is whatever the process set (prctl PR_SET_NAME): it ends at the LAST ')'.
    stat = parse_stat(stat_line("a) R 9 (b", state="Z", ppid=77, processor=0))
    assert stat is not None
    assert (stat.pid, stat.state, stat.ppid, stat.processor) == (4242, "Z", 77, 0)


def test_garbage_is_none() -> None:
    assert parse_stat(b"") is None
    assert parse_stat(b"4242 no parenthesis") is None


def test_this_process_as_the_kernel_and_psutil_see_it() -> None:
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        stat = read_stat(f"/proc/{os.getpid()}/stat")
        me = psutil.Process()
        assert stat is not None
        assert (stat.pid, stat.ppid, stat.pgrp) == (os.getpid(), os.getppid(), os.getpgrp())
        assert stat.state == "R"  # it is reading its own stat
        assert stat.num_threads == me.num_threads()
        assert 0 <= stat.processor < (os.cpu_count() or 1)
    finally:
        stop.set()
        t.join()
    assert read_stat("/proc/0/stat") is None
