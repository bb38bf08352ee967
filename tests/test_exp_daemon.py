"""daemon: the daemon is cut off when the main's code ends, and may not have children."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

METHODS = ["fork", "forkserver"]
ASSERTION = "daemonic processes are not allowed to have children"


@pytest.mark.parametrize("start_method", METHODS)
def test_daemon_is_terminated_when_the_main_code_ends(run_experiment: Any,
                                                      start_method: str) -> None:
    out = run_experiment("daemon", start_method=start_method, time_scale=0.2)
    assert out.run["status"] == "succeeded"
    assert out.result["daemon_finished"] is False
    assert out.result["daemon_exitcode"] == -15
    assert out.result["grandchild_error"] is None

    daemon = [e for e in out.kinds("proc.start") if e["data"]["role"] == "daemon"]
    assert len(daemon) == 1 and daemon[0]["pid"] == out.result["daemon_pid"]
    texts = [(e["proc"], e["data"]["text"]) for e in out.kinds("print")]
    assert ("daemon-1", "alex开始工作") in texts
    assert ("daemon-1", "alex工作完毕") not in texts  # cut off before its last line
    assert ("main", "主") in texts
    # The main's code ends, then the daemon exits, killed by SIGTERM.
    seqs = {e["kind"]: e["seq"] for e in out.events
            if e["kind"] in ("main.code_end",) or
            (e["kind"] == "proc.exit" and e["proc"] == "daemon-1")}
    assert seqs["main.code_end"] < seqs["proc.exit"]
    exits = [e for e in out.kinds("proc.exit") if e["proc"] == "daemon-1"]
    assert [e["data"]["exitcode"] for e in exits] == [-15]
    assert not out.kinds("error")


@pytest.mark.parametrize("start_method", METHODS)
def test_daemon_cannot_start_a_child(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("daemon", spawn_grandchild=True, start_method=start_method,
                         time_scale=0.2)
    assert out.run["status"] == "succeeded"
    assert out.result["grandchild_error"] == "AssertionError: " + ASSERTION
    errors = out.kinds("error")
    assert len(errors) == 1 and errors[0]["proc"] == "daemon-1"
    assert errors[0]["data"]["type"] == "AssertionError"
    assert errors[0]["data"]["message"] == ASSERTION
    assert "Traceback" in errors[0]["data"]["traceback"]
    # No grandchild process ever started.
    assert [e["proc"] for e in out.kinds("proc.start")
            # not the forkserver the sampler may see
            if e["data"]["role"] != "helper"] == ["main", "daemon-1"]
    assert out.result["daemon_finished"] is False


def test_bad_work_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "daemon", "params": {"work": -1}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "work"
