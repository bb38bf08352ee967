"""How true the core lanes are, and what each mode costs (issue 11's table, measured again).

Runs in the bench process (as root: it records the kernel's scheduler tracepoints with
tests/kernel_trace.py, the reference the tests use). For `gil` (2 workers, `work` 1 CPU-s
each) in threads and processes mode, on a real server with `--cpu-lanes exact` and with
`--cpu-lanes sampled`, each run is recorded by the stream and by the kernel at once:

- drawn on-core time / kernel's, per worker: the stream's `cpu.run` stretches summed as
  (t1 - t0) x share, over the kernel's spans of the same thread (threads mode: the
  worker's tid; processes mode: the worker process and its threads);
- both workers on cores at once over the work's window (`workers.go` to the last
  `task.end`): drawn (the integral of the product of the two workers' drawn densities)
  vs the kernel's;
- the kernel's and the drawn on-core time over the worker's own CPU clock (the lesson's
  `per_worker_cpu`, thread_time / process_time), and the VM's steal time meanwhile: the
  clocks a task's CPU time is counted by leave steal out, switch times do not.

Then the cost: CPU seconds of the server process per second of wall time while it runs a
`ticket_rush` of 100 processes with the lock (time_scale 0.05), exact vs sampled, from
/proc/<server pid>/stat (utime + stime) before the POST and after the stream's end; no
tracing then. Prints tables, never fails.

    python -m bench.core_lanes [--runs 3] [--cost-runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import BenchServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
# The tests' reference tools, by path: the kernel's record, and the comparison with it.
from kernel_trace import (  # noqa: E402
    KernelTrace,
    TracefsUnavailable,
    drawn_overlap,
    mount_tracefs,
    on_cpu_total,
    overlap_fraction,
)
from lane_check import (  # noqa: E402
    drawn_stretches,
    drawn_total,
    gil_workers,
    process_cpu_seconds,
)


def _steal_ticks() -> tuple[int, int]:
    """(steal, all) ticks of every CPU so far."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7], sum(fields[:8])


def _run(srv: BenchServer, experiment: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Start a run and read its NDJSON stream to the end (bounded by the run's timeout)."""
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        response = client.post("/api/runs", json={"experiment": experiment, "params": params})
        response.raise_for_status()
        run_id = response.json()["id"]
        events = []
        with client.stream("GET", f"/api/runs/{run_id}/events.ndjson") as stream:
            for line in stream.iter_lines():
                if line:
                    events.append(json.loads(line))
        run = client.get(f"/api/runs/{run_id}").json()
    if run["status"] != "succeeded":
        raise RuntimeError(f"run {run_id} {run['status']}: {run.get('error')}")
    events.append({"kind": "_run", "data": run})
    return events


def gil_once(srv: BenchServer, mode: str) -> dict[str, Any]:
    """One gil run, recorded by the stream and the kernel; the figures of one table row."""
    steal0, all0 = _steal_ticks()
    with KernelTrace() as kt:
        events = _run(srv, "gil", {"mode": mode, "workers": 2, "work": 1})
    steal1, all1 = _steal_ticks()
    run = events[-1]["data"]
    t0_ns = events[0]["data"]["t0_monotonic_ns"]
    main = run["pid"]
    workers = gil_workers(kt, events, t0_ns, main, mode)
    go = next(e["t"] for e in events if e["kind"] == "workers.go")
    last_end = max(e["t"] for e in events if e["kind"] == "task.end")
    w0, w1 = t0_ns + round(go * 1e9), t0_ns + round(last_end * 1e9)
    a, b = workers
    # The main process's own thread and its other threads, drawn: what a per-process
    # total of the main adds to the two workers in threads mode.
    rest = drawn_total(drawn_stretches(events, t0_ns, main)) - (
        sum(drawn_total(w.drawn) for w in workers) if mode == "threads" else 0.0)
    return {
        "ratios": [drawn_total(w.drawn) / on_cpu_total(w.kernel) for w in workers],
        "kernel_over_own": [on_cpu_total(w.kernel) / 1e9 / w.own_cpu for w in workers],
        "drawn_over_own": [drawn_total(w.drawn) / 1e9 / w.own_cpu for w in workers],
        "both_drawn": drawn_overlap(a.drawn, b.drawn, w0, w1),
        "both_kernel": overlap_fraction(a.kernel, b.kernel, w0, w1),
        "stretches": sum(len(w.drawn) for w in workers),
        "main_rest_ms": rest / 1e6,
        "steal": (steal1 - steal0) / max(1, all1 - all0),
        "load": os.getloadavg()[0],
    }


def cost_once(srv: BenchServer) -> dict[str, float]:
    """Server CPU s per wall s over one 100-process ticket_rush (lock on), no tracing."""
    cpu0, t0 = process_cpu_seconds(srv.proc.pid), time.monotonic()
    events = _run(srv, "ticket_rush", {"n": 100, "lock": True, "time_scale": 0.05})
    cpu1, t1 = process_cpu_seconds(srv.proc.pid), time.monotonic()
    return {"cpu_per_s": (cpu1 - cpu0) / (t1 - t0), "wall_s": t1 - t0,
            "cpu_runs": sum(1 for e in events if e["kind"] == "cpu.run"),
            "events": len(events) - 1}


def _span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}-{hi:{fmt}}"


def run(quick: bool = False, runs: int | None = None,
        cost_runs: int | None = None) -> dict[str, Any]:
    runs = runs or (1 if quick else 3)
    cost_runs = cost_runs or (1 if quick else 3)
    try:
        mount_tracefs()
        with KernelTrace(buffer_size_kb=1024):
            pass
    except (TracefsUnavailable, OSError) as exc:
        return {"skipped": f"tracefs cannot be mounted or written: {exc}"}
    out: dict[str, Any] = {"runs": runs, "cost_runs": cost_runs, "gil": {}, "cost": {}}
    for lanes in ("exact", "sampled"):
        with BenchServer("--cpu-lanes", lanes) as srv:
            for mode in ("threads", "processes"):
                out["gil"][f"{mode} {lanes}"] = [gil_once(srv, mode) for _ in range(runs)]
            out["cost"][lanes] = [cost_once(srv) for _ in range(cost_runs)]
    return out


def report(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"## Core lanes vs the kernel: skipped ({r['skipped']})"
    lines = [f"## Core lanes vs the kernel's record (gil, 2 workers x 1 CPU-s; {r['runs']} "
             "run(s) each; ranges over runs and workers)",
             "| gil | drawn / kernel's on-core | both on cores: drawn vs kernel | "
             "kernel / own clock | drawn / own clock | main's other threads, drawn ms | "
             "stretches/run | steal | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in r["gil"].items():
        ratios = [x * 100 for row in rows for x in row["ratios"]]
        k_own = [x * 100 for row in rows for x in row["kernel_over_own"]]
        d_own = [x * 100 for row in rows for x in row["drawn_over_own"]]
        both = "; ".join(f"{row['both_drawn'] * 100:.1f} vs {row['both_kernel'] * 100:.1f} %"
                         for row in rows)
        lines.append(
            f"| {name} | {_span(ratios, '.1f')} % | {both} | {_span(k_own, '.1f')} % | "
            f"{_span(d_own, '.1f')} % | {_span([row['main_rest_ms'] for row in rows], '.1f')} | "
            f"{_span([row['stretches'] for row in rows], '.0f')} | "
            f"{_span([row['steal'] * 100 for row in rows], '.1f')} % | "
            f"{_span([row['load'] for row in rows], '.1f')} |")
    lines.append("")
    lines.append(f"## What each mode costs: server CPU s per wall s, ticket_rush n=100 lock on, "
                 f"time_scale 0.05 ({r['cost_runs']} run(s) each)")
    lines.append("| cpu lanes | server CPU s/s | wall s | cpu.run events | events |")
    lines.append("|---|---|---|---|---|")
    for lanes, rows in r["cost"].items():
        lines.append(f"| {lanes} | {_span([x['cpu_per_s'] for x in rows], '.3f')} | "
                     f"{_span([x['wall_s'] for x in rows], '.2f')} | "
                     f"{_span([x['cpu_runs'] for x in rows], '.0f')} | "
                     f"{_span([x['events'] for x in rows], '.0f')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="gil runs per mode (default 3; quick 1)")
    parser.add_argument("--cost-runs", type=int, help="ticket_rush runs per mode (3; quick 1)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    print(report(run(args.quick, args.runs, args.cost_runs)))
    print(f"\n(took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
