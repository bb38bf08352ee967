"""A run's ledger: what its lifecycle events have said so far, and the one place its
`run.end` is built.

Runs in the relay thread (app.pipe.relay keeps one ledger per run and shows it every decoded
event before stamping). Two promises of docs/api.md are kept here:

- `proc.exit` once for every process: a process killed by a signal cannot report its own
  exit, so its parent's `proc.reap` stands in for it; at the end, a process never seen to
  exit gets a `proc.exit` that says so (`source: unobserved`).
- `run.end` is the last event and says everything: status, result, error, the main's exit
  code, the events dropped past the cap. The run manager only reads it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from procscope.pipe.events import server_event

FINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out", "interrupted"})
# run.end's `detail` for a run that a server left live when it died (app.live.runs ends it so
# when the server starts again on the same history).
INTERRUPTED = ("the server stopped without ending this run (it was killed or crashed); "
               "the run's processes died with it, and this run.end was written when the "
               "server started again")


def final_status(stop_reason: str | None, exitcode: int | None) -> str:
    """A run stopped by the server ends as why it was stopped; else by its main's exit."""
    if stop_reason is not None:
        return stop_reason
    return "succeeded" if exitcode == 0 else "failed"


def signal_name(signum: int) -> str:
    """9 -> 'SIGKILL' (a number the kernel has no name for: 'signal 77')."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_words(exitcode: int | None, program: bool) -> str:
    """How a failed run's main ended, for its `error` when it raised nothing: a traced
    program's exit code is the program's own (its shell would see the same)."""
    if not program:
        return f"the experiment's main process exited with code {exitcode}"
    if exitcode is not None and exitcode < 0:
        return f"the program was killed by {signal_name(-exitcode)} (exit code {exitcode})"
    return f"the program exited with code {exitcode}"


def error_of(run_error: dict[str, Any]) -> str | None:
    """A run.error's data as the run's `error`: its traceback, or for a lesson that failed
    in its own words (experiments.spec.LessonFailure: no traceback) its message."""
    return run_error.get("traceback") or run_error.get("message")


@dataclass
class Ledger:
    """One run's lifecycle, as far as the relay has read it."""

    names: dict[int, str] = field(default_factory=dict)
    exited: set[int] = field(default_factory=set)
    result: Any = None
    error: str | None = None  # the experiment's own traceback, or its words (run.error)
    error_zh: str | None = None  # those words in Chinese, where the lesson said them so
    dropped: int = 0
    program: bool = False  # a traced program's run (`procscope trace`), not a lesson's

    def note(self, kind: str, event: dict[str, Any],
             t_ns: int) -> tuple[bool, list[dict[str, Any]]]:
        """Learn from one decoded event: (keep it?, events to stamp before it)."""
        pid: int = event.get("pid") or 0
        data = event.get("data") or {}
        if kind == "run.start":
            self.program = data.get("kind") == "program"
        elif kind == "proc.start":
            self.names[pid] = event.get("proc") or str(pid)
        elif kind == "proc.exit":
            if pid in self.exited:
                return False, []  # already known from its parent's proc.reap
            self.exited.add(pid)
        elif kind == "proc.reap":
            child = data.get("child")
            if isinstance(child, int) and child not in self.exited:
                self.exited.add(child)
                return True, [server_event(
                    "proc.exit", {"exitcode": data.get("exitcode"), "source": "reaped"},
                    t_ns=t_ns, pid=child, ppid=pid, proc=self.names.get(child, str(child)))]
        elif kind == "run.result":
            self.result = data.get("result")
        elif kind == "run.error":
            self.error = error_of(data)
            self.error_zh = data.get("message_zh") or None
        return True, []

    def name(self, pid: int | None) -> str | None:
        return self.names.get(pid) if pid is not None else None

    def end(self, t_ns: int, stop_reason: str | None, exitcode: int | None) -> list[dict[str, Any]]:
        """The run's last events: a proc.exit for each process never seen to exit, then
        run.end with everything the run's page and API say about how it ended."""
        out = []
        for pid, name in self.names.items():
            # Not marked exited here: the relay shows each of these to note() like any
            # proc.exit, and note() would drop one whose pid it already had (they were
            # lost so, until a run interrupted by a dead server needed them).
            if pid not in self.exited:
                out.append(server_event("proc.exit", {"exitcode": None, "source": "unobserved"},
                                        t_ns=t_ns, pid=pid, proc=name))
        status = final_status(stop_reason, exitcode)
        error = self.error
        if status == "failed" and error is None:
            error = exit_words(exitcode, self.program)
        data = {"status": status, "result": self.result, "error": error,
                "exitcode": exitcode, "dropped": self.dropped}
        if status == "failed" and self.error_zh:
            data["error_zh"] = self.error_zh
        if status == "interrupted":
            data["detail"] = INTERRUPTED
        out.append(server_event("run.end", data, t_ns=t_ns))
        return out
