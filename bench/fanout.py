"""Fan-out: N viewers of one run at 1,000 events/s, on one server: emit-to-client latency,
and server CPU per delivered event beyond one viewer's, against one bare `send()` per
viewer per flush.

Runs in the bench process: `python -m bench.fanout [--viewers 1 200 500] [--seconds 5]`
prints one line per case (also what the fan-out work can use to measure a change).

One case: a `flood` run (4 processes x 250 events/s, paced: 1,000 `bench.tick` a second;
the run also carries the sampler's cpu.run and proc.state events, about 1,100 more a
second, which are delivered too), then N viewers (bench.viewers: ~20 probes timing frames
in one process, the rest counting in up to 4 processes, all started before the run) join
it from its current seq (`?after=`), then a steady window starts once all are connected
and `settle` s have passed. Over the window: the server process's CPU (all its threads,
from schedstat: bench.viewers.cpu_seconds), the viewers' own, the frames every viewer read
(counted by the viewers: every kind is a delivery) and the probes' delays of the ticks
emitted in it. Every viewer must read every event to run.end (`complete`).

    server CPU per delivered event beyond one viewer's
        = (cores at N viewers - cores at 1 viewer)
          / (deliveries/s at N viewers - deliveries/s at 1 viewer)

and its baseline the same figure for bench.send_baseline at the same events/s and frame
size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench import send_baseline, viewers
from bench.server import BenchServer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RATE = 250  # events/s per flood process
PROCESSES = 4
PROBES = 20


def percentiles(delays: list[float]) -> dict[str, float]:
    if len(delays) < 2:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": len(delays)}
    qs = statistics.quantiles(delays, n=100, method="inclusive")
    return {"p50": qs[49] * 1e3, "p95": qs[94] * 1e3, "p99": qs[98] * 1e3, "n": len(delays)}


def _events(client: httpx.Client, run_id: str) -> int:
    count: int = client.get(f"/api/runs/{run_id}").json()["events"]
    return count


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every process, the other engineers'
    too), from /proc/stat: beside the server's and the viewers' own, it shows how much of
    the 2 cores a case had."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / CLOCK_TICKS


def _t0(client: httpx.Client, run_id: str) -> float:
    """The run's t0 (monotonic s), from its first event, run.start."""
    with client.stream("GET", f"/api/runs/{run_id}/events.ndjson") as response:
        for line in response.iter_lines():
            t0: float = json.loads(line)["data"]["t0_monotonic_ns"] / 1e9
            return t0
    raise RuntimeError(f"run {run_id} has no run.start")


def case(server: BenchServer, n: int, seconds: float, settle: float = 1.0,
         probes: int = PROBES, on_window: Callable[[], None] | None = None) -> dict[str, Any]:
    """One run watched by `n` viewers: the steady window's figures. `on_window` is called
    as the window starts (bench.profiles attaches its profilers there)."""
    # s of run before the window: connect the viewers. A server past its
    # capacity connects them slowly (1,000 viewers at 8b3ab80: 33 s): the window then
    # starts at the budget's end anyway, with those connected (`ready`), and says so.
    connect_budget = 3.0 + n / 100
    per_process = int(RATE * (connect_budget + settle + seconds + 1.0))
    watch = viewers.start("127.0.0.1", server.port, n, probes=probes,
                          limit=connect_budget + settle + seconds + 120)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        posted = time.monotonic()
        r = client.post("/api/runs", json={"experiment": "flood", "params": {
            "processes": PROCESSES, "events": per_process, "rate": RATE}})
        r.raise_for_status()
        run_id = r.json()["id"]
        run_ends = posted + per_process / RATE  # when the flood stops emitting, about
        # The viewers join from now on (`?after=`), not from the run's start: a replay of
        # the seconds that N viewers take to connect would be measured instead of the live
        # stream (at 500 viewers it made the last ones connect 9 s late).
        t0 = _t0(client, run_id)
        after = _events(client, run_id)
        watch.connect(f"/api/runs/{run_id}/events?after={after}", t0)
        ready = watch.wait_ready(connect_budget)
        w0 = time.monotonic() + settle
        w1 = min(w0 + seconds, run_ends - 0.5)
        time.sleep(max(0.0, w0 - time.monotonic()))  # the window is wall time: wait for it
        if on_window:
            on_window()
        probe_pid, counter_pids = watch.pids[:1], watch.pids[1:]
        # The window's ends: CPU of the server and the viewers, and the frames every viewer
        # has read (not asked of the server: past its capacity it answers REST late).
        c0, p0, v0 = (viewers.cpu_seconds([server.proc.pid]), viewers.cpu_seconds(probe_pid),
                      viewers.cpu_seconds(counter_pids))
        m0, t0, b0 = watch.mark(), time.monotonic(), busy_seconds()
        time.sleep(max(0.0, w1 - time.monotonic()))
        c1, p1, v1 = (viewers.cpu_seconds([server.proc.pid]), viewers.cpu_seconds(probe_pid),
                      viewers.cpu_seconds(counter_pids))
        m1, t1, b1 = watch.mark(), time.monotonic(), busy_seconds()
        timed, counted = watch.results(per_process / RATE + 120)
        total = client.get(f"/api/runs/{run_id}", timeout=120).json()["events"]
    everyone = timed + counted
    delays = [d for r in timed for e, d in zip(r.emitted, r.delays, strict=True)
              if t0 <= e <= t1]
    frames = sum(r.frames for r in everyone)
    return {
        "viewers": n, "ready": ready, "connect_s": (w0 - settle) - posted,
        "window_s": t1 - t0,
        # what the probes read per second, each: the stream's rate as the viewers get it
        "events_per_s": (m1[0][1] - m0[0][1]) / max(1, len(timed)) / (t1 - t0),
        "delivered_per_s": sum(b[1] - a[1] for a, b in zip(m0, m1, strict=True)) / (t1 - t0),
        "server_cores": (c1 - c0) / (t1 - t0), "probes_cores": (p1 - p0) / (t1 - t0),
        "counters_cores": (v1 - v0) / (t1 - t0),
        "viewers_cores": (p1 - p0 + v1 - v0) / (t1 - t0), "probes": len(timed),
        "viewer_processes": len(watch.pids),
        "complete": sum(r.frames == total - after and r.ended for r in everyone),
        "frame_bytes": sum(r.bytes for r in everyone) / max(1, frames),
        # the server's sends a second to one viewer, as the probes (which never wait
        # between reads) saw them: the flush rate the baseline sends at
        "sends_per_s": statistics.median(
            r.reads / max(1e-9, r.last - r.first) for r in timed) if timed else 0.0,
        "machine_busy_cores": (b1 - b0) / (t1 - t0),
        **percentiles(delays),
    }


def per_event_us(one: dict[str, Any], many: dict[str, Any], key: str = "server_cores",
                 ) -> float:
    """CPU µs per delivered event beyond one viewer's, from a 1-viewer and an N-viewer case:
    the extra CPU over the extra deliveries the viewers counted."""
    extra = many["delivered_per_s"] - one["delivered_per_s"]
    return float((many[key] - one[key]) / extra * 1e6) if extra > 0 else float("nan")


def flush_of(c: dict[str, Any]) -> float:
    """The server's flush interval in a case, s (20 ms if the probes saw none)."""
    sends = c.get("sends_per_s", 0.0)
    return 1.0 / sends if sends > 0 else send_baseline.FLUSH


def baseline(one: dict[str, Any], many: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The bare sender at the same events/s and frame size, 1 viewer and N."""
    rate, size, flush = many["events_per_s"], int(many["frame_bytes"]), flush_of(many)
    b1 = send_baseline.measure(1, rate, size, seconds, flush=flush)
    bn = send_baseline.measure(many["viewers"], rate, size, seconds, flush=flush)
    b1["server_cores"], bn["server_cores"] = b1["sender_cores"], bn["sender_cores"]
    return {"one": b1, "many": bn, "per_event_us": per_event_us(b1, bn)}


def line(c: dict[str, Any]) -> str:
    return (f"{c['viewers']:>5} viewers: p50/p95/p99 {c['p50']:6.1f} {c['p95']:6.1f} "
            f"{c['p99']:7.1f} ms (n={c['n']}), {c['events_per_s']:6.0f} events/s, server "
            f"{c['server_cores']:.2f} cores, viewers {c['probes_cores']:.2f} cores ({c['probes']} "
            f"probes) + {c['counters_cores']:.2f} ({c['viewer_processes'] - 1} processes), "
            f"complete {c['complete']}/{c['viewers']}, "
            f"{c['ready']} connected in {c['connect_s']:.1f} s, a send every "
            f"{flush_of(c) * 1e3:.0f} ms, machine busy {c['machine_busy_cores']:.2f} cores")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 200, 500])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline", action="store_true",
                        help="also the bare sender's CPU per delivered event")
    args = parser.parse_args()
    with BenchServer("--max-streams", "2000") as server:
        cases = [case(server, n, args.seconds) for n in args.viewers]
    for c in cases:
        print(line(c))
    if cases[0]["viewers"] == 1:
        for c in cases[1:]:
            print(f"server CPU per delivered event beyond one viewer's, {c['viewers']} "
                  f"viewers: {per_event_us(cases[0], c):.2f} µs")
            if args.baseline:
                b = baseline(cases[0], c, args.seconds)
                print(f"  one sendall() per viewer per {flush_of(c) * 1e3:.0f} ms "
                      f"flush, bare sender: {b['per_event_us']:.2f} µs "
                      f"(viewers {b['many']['viewers_cores']:.2f} cores)")


if __name__ == "__main__":
    main()
