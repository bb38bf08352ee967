"""Unit tests for app.pipe.ledger: proc.exit once per process, and the whole run.end."""

from __future__ import annotations

from typing import Any

from procscope.pipe.ledger import Ledger, final_status


def ev(kind: str, pid: int | None = None, proc: str | None = None, **data: Any) -> dict[str, Any]:
    return {"kind": kind, "pid": pid, "ppid": None, "cpu": None, "proc": proc, "data": data}


def test_a_killed_process_gets_its_proc_exit_from_its_parents_reap() -> None:
    ledger = Ledger()
    assert ledger.note("proc.start", ev("proc.start", 10, "main"), 1) == (True, [])
    assert ledger.note("proc.start", ev("proc.start", 11, "buyer-1"), 2) == (True, [])
    keep, before = ledger.note("proc.reap", ev("proc.reap", 10, child=11, exitcode=-15), 3)
    assert keep
    [stand_in] = before
    assert stand_in["kind"] == "proc.exit" and stand_in["pid"] == 11
    assert stand_in["ppid"] == 10 and stand_in["proc"] == "buyer-1" and stand_in["t"] == 3
    assert stand_in["data"] == {"exitcode": -15, "source": "reaped"}
    # Its own proc.exit, should it still arrive, is not a second one.
    assert ledger.note("proc.exit", ev("proc.exit", 11, exitcode=0), 4) == (False, [])


def test_a_process_that_reported_its_exit_is_not_reaped_twice() -> None:
    ledger = Ledger()
    ledger.note("proc.start", ev("proc.start", 11, "w"), 1)
    assert ledger.note("proc.exit", ev("proc.exit", 11, exitcode=0), 2) == (True, [])
    assert ledger.note("proc.reap", ev("proc.reap", 10, child=11, exitcode=0), 3) == (True, [])


def test_run_end_says_everything_and_comes_last() -> None:
    ledger = Ledger()
    ledger.note("proc.start", ev("proc.start", 10, "main"), 1)
    ledger.note("proc.start", ev("proc.start", 12, "daemon-1"), 1)
    ledger.note("proc.exit", ev("proc.exit", 10, exitcode=0), 2)
    ledger.note("run.result", ev("run.result", 10, result={"sold": 3}), 2)
    ledger.dropped = 7
    out = ledger.end(9, None, 0)
    assert [e["kind"] for e in out] == ["proc.exit", "run.end"]
    assert out[0]["pid"] == 12 and out[0]["data"] == {"exitcode": None, "source": "unobserved"}
    assert out[-1]["t"] == 9
    assert out[-1]["data"] == {"status": "succeeded", "result": {"sold": 3}, "error": None,
                               "exitcode": 0, "dropped": 7}


def test_the_experiments_own_traceback_is_the_error() -> None:
    ledger = Ledger()
    ledger.note("run.error", ev("run.error", 10, traceback="Traceback ...\nValueError: x"), 1)
    end = ledger.end(2, None, 1)[-1]["data"]
    assert end["status"] == "failed" and end["error"].endswith("ValueError: x")
    # Without one, a failed run still says why.
    end = Ledger().end(2, None, -9)[-1]["data"]
    assert end["error"] == "the experiment's main process exited with code -9"


def test_a_lesson_that_fails_in_its_own_words_has_them_as_its_error() -> None:
    # Issue 23: a Pool's lost task (experiments.spec.LessonFailure) is the lesson's point;
    # its run.error carries no traceback of procscope's wiring.
    ledger = Ledger()
    ledger.note("run.error", ev("run.error", 10, type="LessonFailure", traceback=None,
                                message="task 1 was lost: its pool worker died"), 1)
    assert ledger.end(2, None, 1)[-1]["data"]["error"] == "task 1 was lost: its pool worker died"


def test_a_traced_programs_exit_code_is_said_as_the_programs() -> None:
    # Issue 23: a traced program that exited 3 was told "the experiment's main process
    # exited with code 3".
    for code, words in ((3, "the program exited with code 3"),
                        (-9, "the program was killed by SIGKILL (exit code -9)")):
        ledger = Ledger()
        start = ev("run.start")
        start["data"] = {"kind": "program", "experiment": "program"}
        ledger.note("run.start", start, 0)
        assert ledger.end(2, None, code)[-1]["data"]["error"] == words


def test_final_status() -> None:
    assert final_status(None, 0) == "succeeded"
    assert final_status(None, 1) == "failed"
    assert final_status(None, None) == "failed"
    assert final_status("cancelled", 0) == "cancelled"
    assert final_status("timed_out", -15) == "timed_out"
