"""`procscope run` and `procscope --help`: the terminal ways in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import ROOT


def procscope(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procscope", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_help_explains_the_options() -> None:
    out = procscope("--help")
    assert out.returncode == 0
    for option in ("--host", "--port", "--token", "--run-timeout", "--sample-hz", "run"):
        assert option in out.stdout
    assert "127.0.0.1" in out.stdout


def test_run_prints_events_live_and_the_result() -> None:
    out = procscope("run", "ticket_rush", "--set", "n=10", "--set", "lock=true",
                    "--set", "time_scale=0.05")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "run.start" in lines[0]
    assert sum("proc.start" in line for line in lines) == 11
    assert any("购票成功" in line for line in lines)
    assert "status: succeeded" in lines
    result = json.loads(next(line for line in lines if line.startswith("result: "))[8:])
    assert result["sold"] == 1 and len(result["buyers"]) == 10


def test_run_as_ndjson_matches_the_contract() -> None:
    out = procscope("run", "join", "--set", "durations=[0.5,1]", "--set", "time_scale=0.1",
                    "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["kind"] == "run.start" and events[-1]["kind"] == "run.end"
    assert events[-1]["data"]["result"]["max"] == 0.1


def test_run_rejects_bad_params_naming_the_field() -> None:
    out = procscope("run", "ticket_rush", "--set", "n=100000")
    assert out.returncode == 2
    assert "n:" in out.stderr
    out = procscope("run", "no_such_lesson")
    assert out.returncode == 2 and "ticket_rush" in out.stderr


def test_run_failure_exits_non_zero() -> None:
    env_run = subprocess.run([sys.executable, "-m", "procscope", "run", "fails"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PROCSCOPE_SELFTEST": "1"})
    assert env_run.returncode == 1
    assert "status: failed" in env_run.stdout
    assert "ZeroDivisionError" in env_run.stderr


def test_ctrl_c_cancels_the_run_and_leaves_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "procscope", "run", "join",
                             "--set", "durations=[30,30]"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "开始工作" in line:  # a worker is running: now interrupt, as a user would
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert "status: cancelled" in out
