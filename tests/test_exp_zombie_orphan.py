"""zombie_orphan: an unreaped child is a zombie (Z) until joined; an orphan is adopted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Server
from machine_load import LoadMeter, load, run_clock

__all__ = ["load"]  # the fixture, imported for pytest


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_unjoined_child_is_a_zombie_until_join(run_experiment: Any, start_method: str) -> None:
    out = run_experiment("zombie_orphan", mode="zombie", hold=3, start_method=start_method,
                         time_scale=0.1)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["zombie_seen"] is True
    assert result["states_seen"][-1] == "Z"
    assert result["state_after_join"] == "gone"
    assert result["zombie_seconds"] >= 0.3  # hold=3 at time_scale 0.1
    child = result["child_pid"]

    zombie = out.kinds("proc.zombie")
    assert len(zombie) == 1 and zombie[0]["data"]["child"] == child
    assert zombie[0]["data"]["state"] == "Z" and zombie[0]["proc"] == "main"
    # The child exits, is a zombie for about `hold` (0.3 s), and only join() reaps it.
    exit_ = next(e for e in out.kinds("proc.exit") if e["pid"] == child)
    reap = next(e for e in out.kinds("proc.reap") if e["data"]["child"] == child)
    assert exit_["seq"] < zombie[0]["seq"] < reap["seq"]
    assert reap["proc"] == "main" and reap["data"]["exitcode"] == 0
    assert reap["t"] - exit_["t"] >= 0.2
    # The kernel sampler saw it too (a Z state change for the child), if it was fast enough.
    states = [e["data"]["state"] for e in out.kinds("proc.state") if e["pid"] == child]
    if states:
        assert "Z" in states


def test_forkserver_child_never_lingers_as_a_zombie(run_experiment: Any,
                                                   load: LoadMeter) -> None:
    # hold=5: the main looks at the child for up to 5 s and joins it only then; a child
    # reaped by someone else ends that look as soon as it is gone, so the test takes no
    # longer for it.
    out = run_experiment("zombie_orphan", mode="zombie", hold=5, start_method="forkserver",
                         time_scale=1.0)
    assert out.run["status"] == "succeeded"
    result = out.result
    assert result["child_parent"] != out.events[1]["pid"]  # the fork server, not main
    # The fork server reaps its children as soon as they exit: the child was gone from
    # /proc while the main still looked at it and had not joined it (a main's own child
    # would have been Z to the end of the look, as in the test above).
    assert result["states_seen"][-1] == "gone", result["states_seen"]
    assert set(result["states_seen"]) <= {"R", "S", "D", "Z", "gone"}, result["states_seen"]
    assert result["state_after_join"] == "gone"
    # At most a glimpse of Z (the main's polls may catch one, the sampler too: it looks at
    # a process right after it switches out, exiting included; seen in a clean-clone CI
    # run): 0.1 s on free cores, held against the load around it.
    clock = run_clock(out.events)
    child = result["child_pid"]
    gone = [e["t"] for e in out.kinds("proc.check")
            if e["data"]["child"] == child and e["data"]["state"] == "gone"]
    for zombie in out.kinds("proc.zombie"):
        assert gone, zombie
        load.window(clock + zombie["t"], clock + gone[0]).assert_within(
            0.1, "the fork server's child as a zombie", took=result["zombie_seconds"])
    for zombie in out.kinds("proc.state"):
        if zombie["data"]["state"] != "Z":
            continue
        exits = [e["t"] for e in out.kinds("proc.exit") if e["pid"] == zombie["pid"]]
        assert exits, zombie
        load.window(clock + zombie["t"], clock + min(exits)).assert_within(
            0.1, f"a Z of pid {zombie['pid']} seen by the sampler",
            took=min(exits) - zombie["t"])


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_orphan_is_reparented_to_the_server(run_experiment: Any, server: Server,
                                            start_method: str) -> None:
    out = run_experiment("zombie_orphan", mode="orphan", hold=3, start_method=start_method,
                         time_scale=0.1)
    assert out.run["status"] == "succeeded"
    result = out.result
    # The server is a child subreaper: the orphan's new parent is the server process.
    assert result["orphan_reparented_to"] == server.proc.pid
    assert result["ppid_before"] == result["parent_pid"]
    assert result["ppid_after"] == server.proc.pid

    moved = out.kinds("proc.reparented")
    assert len(moved) == 1 and moved[0]["proc"] == "orphan-1"
    assert moved[0]["data"]["old_ppid"] == result["parent_pid"]
    assert moved[0]["data"]["new_ppid"] == server.proc.pid
    # The parent exits first, then the orphan reports its new parent, then ends on its own.
    parent_exit = next(e for e in out.kinds("proc.exit") if e["proc"] == "parent-1")
    orphan_exit = next(e for e in out.kinds("proc.exit") if e["proc"] == "orphan-1")
    assert parent_exit["seq"] < moved[0]["seq"] < orphan_exit["seq"]
    assert orphan_exit["data"]["exitcode"] == 0
    assert moved[0]["ppid"] == server.proc.pid  # stamped on the event itself


def test_bad_mode_and_hold_are_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/api/runs", json={"experiment": "zombie_orphan",
                                       "params": {"mode": "ghost"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "mode"
    r = client.post("/api/runs", json={"experiment": "zombie_orphan",
                                       "params": {"hold": 1000}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "hold"
