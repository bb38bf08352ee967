"""What lessons measure about themselves: a process's state and command in /proc, spans
open at once.

Runs in whichever process of a run calls it; standard library only (see spec.py), and
procscope.pipe.redaction (standard library only too).
"""

from __future__ import annotations

from procscope.pipe.redaction import redact_argv


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of `pid` from /proc/<pid>/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()  # comm may hold spaces: it ends at the last ')'
    return fields[0].decode(), int(fields[1])


def command_of(pid: int) -> str:
    """What /proc says process `pid` runs, its secrets `***` (it may be the server, which
    a lesson's orphan is adopted by), cut to 120 characters; '?' if it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return "?"
    shown = redact_argv([w.decode(errors="replace") for w in words if w])
    return " ".join(shown)[:120] or "?"


def max_overlap(spans: list[tuple[int, int]]) -> int:
    """The largest number of (start, end) spans open at the same instant."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    open_now = most = 0
    for _, step in edges:  # at equal times, -1 sorts first: touching spans do not overlap
        open_now += step
        most = max(most, open_now)
    return most
