"""The kernel sampler: per-core lanes drawn from what the scheduler really did."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import RunOutcome
from kernel_trace import KernelTrace, overlap_fraction
from plain_burn import (  # noqa: F401 (tracefs: a fixture, by name)
    tracefs,
    work_window,
    worker_spans,
    workers_asleep,
)

HZ = 100  # the sampler's rate for states when the core lanes are exact (STATES_HZ)
OVERLAP_POINTS = 0.15  # drawn both-at-once short of the kernel's: a period late per change
ASLEEP_POINTS = 0.1  # drawn not runnable over the kernel's asleep: a period late per change


RunExperiment = Callable[..., RunOutcome]  # conftest's run_experiment fixture
Steps = dict[tuple[int, int], list[tuple[float, str, int, float]]]


def state_steps(events: list[dict[str, Any]]) -> Steps:
    """(pid, tid) -> [(t, state, cpu, share of the time really on a core)], time order.

    R is the kernel's "runnable": data.oncpu says how much of it was spent running.
    """
    steps: Steps = defaultdict(list)
    for e in events:
        if e["kind"] == "proc.state":
            d = e["data"]
            oncpu = d.get("oncpu", 1.0) if d["state"] == "R" else 0.0
            steps[(e["pid"], d.get("tid", e["pid"]))].append(
                (e["t"], d["state"], d["cpu"], oncpu))
    for s in steps.values():
        s.sort()
    return steps


def running_intervals(steps: list[tuple[float, str, int, float]], end: float,
                      min_share: float = 0.5) -> list[tuple[float, float, int]]:
    """[(start, stop, cpu)] while the state was R and mostly on a core."""
    out = []
    for (t, state, cpu, share), nxt in zip(steps, [*steps[1:], (end, "", -1, 0.0)], strict=True):
        if state == "R" and share >= min_share:
            out.append((t, nxt[0], cpu))
    return out


def time_on_core(steps: list[tuple[float, str, int, float]], end: float) -> float:
    """Seconds really on a core: each R interval weighted by its on-core share."""
    nexts = [*steps[1:], (end, "", -1, 0.0)]
    return sum((nxt[0] - t) * share
               for (t, state, _, share), nxt in zip(steps, nexts, strict=True) if state == "R")


def overlap(a: list[tuple[float, float, int]], b: list[tuple[float, float, int]],
            different_cores: bool) -> float:
    total = 0.0
    for s1, e1, c1 in a:
        for s2, e2, c2 in b:
            if different_cores and c1 == c2:
                continue
            total += max(0.0, min(e1, e2) - max(s1, s2))
    return total


def weighted_overlap(a: list[tuple[float, str, int, float]],
                     b: list[tuple[float, str, int, float]], t0: float, t1: float) -> float:
    """Seconds of [t0, t1] the picture has both on different cores at once: each R
    interval on a core at its on-core share, two on different cores at the product."""
    def stretches(steps: list[tuple[float, str, int, float]]) -> list[tuple[float, float,
                                                                             int, float]]:
        nexts = [*steps[1:], (t1, "", -1, 0.0)]
        return [(max(t, t0), min(nxt[0], t1), cpu, share)
                for (t, state, cpu, share), nxt in zip(steps, nexts, strict=True)
                if state == "R" and share > 0]
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) * p1 * p2
               for s1, e1, c1, p1 in stretches(a) for s2, e2, c2, p2 in stretches(b)
               if c1 != c2)


@pytest.mark.usefixtures("tracefs")
def test_processes_run_on_two_cores_at_once(run_experiment: RunExperiment) -> None:
    # The kernel records the scheduler while the lesson runs (tests/kernel_trace.py): the
    # picture has the two workers on different cores at once about as much of their
    # work's window as the kernel had them, however much the rest of the machine left them
    # (on free cores ~0.9 of it).
    with KernelTrace() as kt:
        out = run_experiment("gil", mode="processes", workers=2, work=1.0)
    assert out.run["status"] == "succeeded", out.run["error"]
    t0_ns, t1_ns = work_window(out.events)
    kernel_a, kernel_b = worker_spans(kt, out.events)
    kernel = overlap_fraction(kernel_a, kernel_b, t0_ns, t1_ns)
    workers = [e["pid"] for e in out.kinds("task.start")]
    assert len(workers) == 2
    run_t0 = out.events[0]["data"]["t0_monotonic_ns"]
    t0, t1 = (t0_ns - run_t0) / 1e9, (t1_ns - run_t0) / 1e9
    steps = state_steps(out.events)
    a, b = (steps[(pid, pid)] for pid in workers)
    drawn = weighted_overlap(a, b, t0, t1) / (t1 - t0)
    print(f"both on different cores over {t1 - t0:.2f} s: drawn {drawn * 100:.1f} %, "
          f"kernel {kernel * 100:.1f} % ({kt.summary()})")
    assert drawn >= kernel - OVERLAP_POINTS, (drawn, kernel)
    # Each worker drawn on cores the kernel had it on.
    for steps_, spans in ((a, kernel_a), (b, kernel_b)):
        assert {cpu for _, state, cpu, _ in steps_ if state == "R"} <= {s.cpu for s in spans}
    # And drawn runnable (R: on a core or waiting for one) through its own burn, as the
    # kernel has it, however crowded the cores: neither waits for the other.
    burns = {(e["kind"], e["pid"]): e["t"] for e in out.events
             if e["kind"] in ("task.start", "task.end")}
    for pid, steps_, kernel_asleep in zip(workers, (a, b), workers_asleep(kt, out.events),
                                          strict=True):
        start, stop = burns["task.start", pid], burns["task.end", pid]
        nexts = [*steps_[1:], (stop, "", -1, 0.0)]
        not_r = sum(max(0.0, min(nxt[0], stop) - max(t, start))
                    for (t, state, _, _), nxt in zip(steps_, nexts, strict=True) if state != "R")
        drawn_asleep = not_r / (stop - start)
        print(f"  worker {pid}: drawn not runnable {drawn_asleep * 100:.1f} % of its burn, "
              f"kernel asleep {kernel_asleep * 100:.1f} %")
        assert drawn_asleep <= kernel_asleep + ASLEEP_POINTS, (pid, drawn_asleep, kernel_asleep)


def test_threads_take_turns_on_the_gil(run_experiment: RunExperiment) -> None:
    out = run_experiment("gil", mode="threads", workers=2, work=1.0)
    end = out.events[-1]["t"]
    main_pid = out.run["pid"]
    steps = state_steps(out.events)
    threads = [key for key in steps if key[0] == main_pid and key[1] != main_pid]
    running = {key: running_intervals(steps[key], end) for key in threads}
    busy = sorted(running.items(), key=lambda kv: -sum(e - s for s, e, _ in kv[1]))[:2]
    assert len(busy) == 2
    (_, a), (_, b) = busy
    either = sum(e - s for s, e, _ in a) + sum(e - s for s, e, _ in b) \
        - overlap(a, b, different_cores=False)
    parallel = overlap(a, b, different_cores=True)
    # Drawn on a core at least half as long as they ran (their own CPU clocks,
    # thread_time: the kernel's), however long the rest of the machine kept them waiting
    # for a core. Half: states are looked at HZ times a second and the GIL changes hands
    # every 5 ms, so a thread that ran half a period and waits at the look is drawn
    # waiting (on free cores ~60 % of their CPU time is drawn; on crowded ones, where a
    # thread keeps the GIL through its preemptions, ~90 %).
    on_core = sum(time_on_core(steps[key], end) for key, _ in busy)
    cpu = sum(out.result["per_worker_cpu"])
    print(f"threads drawn on a core {on_core:.2f} s, their clocks {cpu:.2f} s; either "
          f"{either:.2f} s, parallel {parallel:.3f} s")
    assert on_core >= 0.5 * cpu, (on_core, cpu)
    # Almost never running on two cores at once: one GIL, one thread at a time. (Both are
    # briefly R together at each GIL hand-off.)
    assert parallel / either < 0.15, (parallel, either)
    assert out.result["speedup"] < 1.3


def test_zombie_is_seen_by_the_kernel(run_experiment: RunExperiment) -> None:
    out = run_experiment("zombie_orphan", mode="zombie", hold=1, time_scale=0.5)
    main_pid = out.run["pid"]
    children = [e["pid"] for e in out.kinds("proc.start") if e["pid"] != main_pid]
    zombie_states = [e for e in out.kinds("proc.state")
                     if e["pid"] in children and e["data"]["state"] == "Z"]
    assert zombie_states, "the kernel's Z state of the unjoined child is in the stream"
    child = zombie_states[0]["pid"]
    reaped = [e for e in out.kinds("proc.reap") if e["data"]["child"] == child]
    assert reaped and reaped[0]["t"] >= zombie_states[0]["t"]
    assert zombie_states[0]["data"]["cpu_time"] >= 0


def test_orphan_is_reparented_to_the_server(run_experiment: RunExperiment,
                                            client: httpx.Client) -> None:
    server_pid = client.get("/api/status").json()["pid"]
    out = run_experiment("zombie_orphan", mode="orphan", hold=1, time_scale=0.5)
    main_pid = out.run["pid"]
    orphans = {e["pid"] for e in out.kinds("proc.state")
               if e["pid"] != main_pid and e["data"]["ppid"] == server_pid}
    assert orphans, "some process of the run was seen re-parented to the server"
    orphan = orphans.pop()
    born = [e for e in out.kinds("proc.start") if e["pid"] == orphan]
    assert born and born[0]["ppid"] != server_pid  # its parent was a process of the run
    assert out.result["orphan_reparented_to"] == server_pid
    assert any(e["data"]["child"] == orphan and e["data"].get("by") == "server"
               for e in out.kinds("proc.reap"))


@pytest.mark.parametrize("mode", ["processes"])
def test_running_time_agrees_with_kernel_cpu_time(run_experiment: RunExperiment, mode: str) -> None:
    out = run_experiment("gil", mode=mode, workers=2, work=0.6)
    end = out.events[-1]["t"]
    steps = state_steps(out.events)
    for exit_event in out.kinds("proc.exit"):
        if not (exit_event["proc"] or "").startswith("worker-"):
            continue
        pid = exit_event["pid"]
        cpu_time = exit_event["data"]["cpu_time"]
        r_time = time_on_core(steps[(pid, pid)], end)
        transitions = len(steps[(pid, pid)])
        # Each change is seen up to one sample period late, and a period's on-core share
        # is reported at its end (to a tenth): a period or so per change, plus rounding.
        tolerance = 2 * (transitions + 2) / HZ + 0.1 * cpu_time
        assert abs(r_time - cpu_time) <= tolerance, (pid, r_time, cpu_time, tolerance)


def test_the_sampler_keeps_to_its_budget_and_says_so() -> None:
    from conftest import Server, read_events

    # Sampled core lanes (exact ones need no high rate), and half a percent of a core:
    # it must slow down.
    srv = Server("--sample-budget", "0.005", "--cpu-lanes", "sampled")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            run = c.post("/api/runs", json={"experiment": "ticket_rush",
                                            "params": {"n": 50, "time_scale": 0.2}}).json()
            events = read_events(c, run["id"])
    finally:
        srv.stop()
    rates = [e["data"] for e in events if e["kind"] == "sampler.rate"]
    assert rates and min(r["hz"] for r in rates) < HZ / 2
    assert all(abs(r["resolution_ms"] * r["hz"] / 1e3 - 1) < 0.05 for r in rates)
    assert any(e["kind"] == "proc.state" for e in events)  # slower, not stopped
