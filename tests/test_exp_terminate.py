"""terminate: terminate() kills the child only; its child (the grandchild) lives on."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Server


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_terminate_spares_the_grandchild(run_experiment: Any, server: Server,
                                         start_method: str) -> None:
    out = run_experiment("terminate", grandchild=True, start_method=start_method,
                         time_scale=0.1)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert isinstance(result["alive_right_after_terminate"], bool)  # usually True: a race
    assert result["alive_after_join"] is False
    assert result["exitcode"] == -15
    assert result["grandchild_survived"] is True
    grandchild = result["grandchild_pid"]
    # The grandchild lost its parent (the child) and was adopted by the server.
    assert result["grandchild_ppid_before"] != result["grandchild_ppid_after"]
    assert result["grandchild_ppid_after"] == server.proc.pid

    terminate = out.kinds("proc.terminate")
    assert len(terminate) == 1 and terminate[0]["data"]["child"] == result["child_pid"]
    alive = [(e["data"]["after"], e["data"]["alive"]) for e in out.kinds("proc.alive")]
    assert alive == [("terminate", result["alive_right_after_terminate"]), ("join", False)]
    child_exit = next(e for e in out.kinds("proc.exit") if e["proc"] == "child-1")
    assert child_exit["data"]["exitcode"] == -15
    assert "child: done" not in [e["data"]["text"] for e in out.kinds("print")
                                 if e["proc"] == "child-1"]
    # After terminate(), the grandchild still runs and prints, under its new parent.
    # (It can notice before the main has reaped the child: re-parenting happens when the
    # child dies, the reap after.)
    later = [e for e in out.kinds("print") if e["proc"] == "grandchild-1"
             and e["seq"] > terminate[0]["seq"]]
    assert later and "I am still working" in later[0]["data"]["text"]
    assert later[0]["ppid"] == server.proc.pid
    # Then the main stops it by pid, and its new parent (the server) reaps it.
    kill = out.kinds("proc.kill")
    assert len(kill) == 1 and kill[0]["data"]["child"] == grandchild
    grand_exit = next(e for e in out.kinds("proc.exit") if e["pid"] == grandchild)
    assert kill[0]["seq"] < grand_exit["seq"] and grand_exit["data"]["exitcode"] == -15
    reaps = [e for e in out.kinds("proc.reap") if e["data"]["child"] == grandchild]
    assert reaps and reaps[0]["data"].get("by") == "server"


def test_forkserver_grandchild_keeps_its_fork_server_parent(run_experiment: Any) -> None:
    out = run_experiment("terminate", grandchild=True, start_method="forkserver",
                         time_scale=0.1)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["grandchild_survived"] is True and result["alive_after_join"] is False
    assert result["grandchild_ppid_before"] == result["grandchild_ppid_after"]
    assert any("fork server" in text for text in out.prints())


def test_without_grandchild_nothing_survives(run_experiment: Any) -> None:
    out = run_experiment("terminate", grandchild=False, time_scale=0.1)
    assert out.run["status"] == "succeeded"
    assert out.result["grandchild_survived"] is False
    assert out.result["alive_after_join"] is False
    assert [e["proc"] for e in out.kinds("proc.start")
            # not the forkserver the sampler may see
            if e["data"]["role"] != "helper"] == ["main", "child-1"]
    assert not out.kinds("proc.kill")


def test_bad_grandchild_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "terminate",
                                       "params": {"grandchild": "maybe"}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "grandchild"
