"""Fan-out: N viewers of one run at 1,000 events/s, on one server: emit-to-client latency,
and server CPU per delivered event beyond one viewer's, against one bare `send()` per
viewer per flush.

Runs in the bench process: `python -m bench.fanout [--viewers 1 200 500] [--seconds 5]
[--join after start] [--run flood gil] [--baseline]` prints one line per case as it is
measured (also what the fan-out work can use to measure a change), then every case in one
markdown table, with the goals and the machine's load averages before and after (the
README's table is that output).

Two joins, each named in the case's line:
- `after`: the viewers join from the run's current seq (`?after=`): the live stream only.
- `start`: they join from seq 0, as the page does (a class opening the teacher's link
  mid-run): each first reads the run's backlog, then the live stream. The timing viewers
  are then a third-party client (npm `eventsource`, the WhatWG EventSource for Node:
  bench/es_probes.mjs), the rest the counters below; all connect within about a second,
  once the run has a backlog (`--backlog` s of it).

Two runs: `flood` (below) and `gil` (the lesson, mode=threads, work=3: ~550 events/s,
its task.* events timed).

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
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from bench import send_baseline, viewers
from bench.server import BenchServer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
EVENTSOURCE = ROOT / ".cache" / "eventsource"  # npm eventsource, installed by `eventsource()`
Join = Literal["after", "start"]
Run = Literal["flood", "gil"]
GIL_RUN: dict[str, object] = {"mode": "threads", "work": 3.0}
GIL_TIMED = "task.start,task.progress,task.end,workers.go,proc.state"
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


def eventsource() -> Path:
    """npm's `eventsource` in .cache/ (installed on first use, as .ci/run does)."""
    if not (EVENTSOURCE / "node_modules" / "eventsource").is_dir():
        subprocess.run(["npm", "install", "--prefix", str(EVENTSOURCE), "--no-audit",
                        "--no-fund", "eventsource@5.1.5"], check=True,
                       stdout=subprocess.DEVNULL)
    return EVENTSOURCE


class EsProbes:
    """`n` EventSource clients (npm eventsource) in one Node process, timing `kinds`."""

    def __init__(self, url: str, n: int, kinds: str, limit: float) -> None:
        self.proc = subprocess.Popen(
            ["node", str(ROOT / "bench" / "es_probes.mjs"), str(eventsource()), url, str(n),
             kinds, str(limit)], stdout=subprocess.PIPE, text=True)
        self.limit = limit

    def wait_ready(self) -> int:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return int(line.split()[1]) if line.startswith("ready") else 0

    def results(self) -> list[viewers.ViewerResult]:
        assert self.proc.stdout is not None
        lines = [ln for ln in self.proc.stdout.read().splitlines() if ln.startswith("[")]
        self.proc.wait(self.limit + 30)
        out = []
        for r in json.loads(lines[-1]) if lines else []:
            out.append(viewers.ViewerResult(ticks=r["ticks"], ended=r["ended"],
                                            emitted=r["emitted"], delays=r["delays"]))
        return out

    def cpu_seconds(self) -> float:
        return viewers.cpu_seconds([self.proc.pid])


def _fanout_counts(server: BenchServer) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{server.url}/api/status", timeout=120).json()["fanout"]
    return counts


def _wait_listed(server: BenchServer, run_id: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while httpx.get(f"{server.url}/api/runs/{run_id}", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.url} never listed run {run_id}")
        time.sleep(0.01)


def _wait_events(client: httpx.Client, run_id: str, at_least: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while _events(client, run_id) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)


def _shares(n: int, parts: int) -> list[int]:
    """`n` split into `parts` as evenly as can be, the larger first."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def case(server: BenchServer, n: int, seconds: float, settle: float = 1.0,
         probes: int = PROBES, on_window: Callable[[], None] | None = None,
         join: Join = "after", run: Run = "flood", backlog: float = 2.0,
         spread: Sequence[BenchServer] = (), extra_pids: Sequence[int] = ()
         ) -> dict[str, Any]:
    """One run watched by `n` viewers: the steady window's figures. `on_window` is called
    as the window starts (bench.profiles attaches its profilers there). `join`: from the
    run's current seq or from its start (after `backlog` s of it); `run`: flood or gil.
    `spread`: other replicas (bench.replicas) the viewers are spread over evenly with
    `server`, which runs the run; the server CPU is all of theirs and `extra_pids`' (a
    redis-server)."""
    servers = [server, *spread]
    # s of run before the window: connect the viewers. A server past its
    # capacity connects them slowly (1,000 viewers at 8b3ab80: 33 s): the window then
    # starts at the budget's end anyway, with those connected (`ready`), and says so.
    connect_budget = 3.0 + n / 100
    lead = backlog if join == "start" else 0.0
    per_process = int(RATE * (lead + connect_budget + settle + seconds + 1.0))
    limit = lead + connect_budget + settle + seconds + 120
    # From seq 0 the EventSource clients time (one viewer alone: ours, it is a CPU baseline
    # the counters' deliveries are measured by); else our probes.
    es = min(probes, n - 1) if join == "start" else 0
    groups = [viewers.start("127.0.0.1", s.port, count, probes=0 if es or i else probes,
                            limit=limit)
              for i, (s, count) in enumerate(zip(servers, _shares(n - es, len(servers)),
                                                 strict=True))]
    # one Viewers of them all: the first process holds our probes (none from seq 0)
    watch = viewers.Viewers([p for g in groups for p in g.procs],
                            [p for g in groups for p in g.pipes])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        counts0 = [_fanout_counts(s) for s in servers]
        posted = time.monotonic()
        params: dict[str, object] = dict(GIL_RUN)
        experiment = run
        if run == "flood":
            params = {"processes": PROCESSES, "events": per_process, "rate": RATE}
        r = client.post("/api/runs", json={"experiment": experiment, "params": params})
        r.raise_for_status()
        run_id = r.json()["id"]
        run_ends = posted + per_process / RATE if run == "flood" else posted + limit
        for other in spread:  # every replica lists the run before its viewers ask for it
            _wait_listed(other, run_id)
        t0 = _t0(client, run_id)
        if join == "after":
            # From now on (`?after=`), not from the run's start: a replay of the seconds
            # that N viewers take to connect would be measured instead of the live stream.
            after = _events(client, run_id)
            path = f"/api/runs/{run_id}/events?after={after}"
        else:
            # From seq 0, as the page opens a run, once it has `backlog` s of events.
            time.sleep(max(0.0, posted + backlog - time.monotonic()))
            after, path = 0, f"/api/runs/{run_id}/events"
        kinds = "bench.tick" if run == "flood" else GIL_TIMED
        es_groups = [EsProbes(s.url + path, count, kinds, limit)
                     for s, count in zip(servers, _shares(es, len(servers)), strict=True)
                     if count]
        probes_es = es_groups or None
        watch.connect(path, t0, tuple(kinds.split(",")))
        ready = watch.wait_ready(connect_budget)
        ready += sum(g.wait_ready() for g in es_groups)
        w0 = time.monotonic() + settle
        w1 = min(w0 + seconds, run_ends - 0.5)
        time.sleep(max(0.0, w0 - time.monotonic()))  # the window is wall time: wait for it
        if on_window:
            on_window()
        probe_pid, counter_pids = watch.pids[:1], watch.pids[1:]
        if probes_es is not None:
            probe_pid = [g.proc.pid for g in es_groups]
            counter_pids = watch.pids
        server_pids = [s.proc.pid for s in servers] + list(extra_pids)

        def cpus() -> tuple[float, float, float]:
            return (viewers.cpu_seconds(server_pids), viewers.cpu_seconds(probe_pid),
                    viewers.cpu_seconds(counter_pids))

        # The window's ends: CPU of the server and the viewers, and the frames every viewer
        # has read (not asked of the server: past its capacity it answers REST late). A
        # lesson run (gil) may end first: the window ends with it.
        c0, p0, v0 = cpus()
        m0, t0, b0 = watch.mark(), time.monotonic(), busy_seconds()
        while time.monotonic() < w1:
            time.sleep(min(0.1, max(0.0, w1 - time.monotonic())))
            if run != "flood" and client.get(f"/api/runs/{run_id}").json()["status"] in (
                    "succeeded", "failed", "cancelled", "timed_out"):
                break
        c1, p1, v1 = cpus()
        m1, t1, b1 = watch.mark(), time.monotonic(), busy_seconds()
        # The window is over: the rest of the run (its connect budget unused) is cancelled,
        # and every viewer still reads every event up to the run's end.
        client.delete(f"/api/runs/{run_id}", timeout=120)
        timed, counted = watch.results(120)
        if probes_es is not None:
            timed, counted = [r for g in es_groups for r in g.results()], timed + counted
        total = client.get(f"/api/runs/{run_id}", timeout=120).json()["events"]
        counts1 = [_fanout_counts(s) for s in servers]
    # what the servers' fan-outs did over the case (/api/status): viewers that caught up and
    # joined a live group, the backlog's cells read from a log and sent to viewers
    fanout_counts = {name: sum(b[name] - a[name] for a, b in zip(counts0, counts1, strict=True))
                     for name in ("joined", "cells_read", "cells_sent")}
    delays = [d for r in timed for e, d in zip(r.emitted, r.delays, strict=True)
              if t0 <= e <= t1]
    ours = counted if probes_es is not None else timed + counted  # those that count frames
    frames = sum(r.frames for r in ours)
    delivered = sum(b[1] - a[1] for a, b in zip(m0, m1, strict=True)) / (t1 - t0)
    readers = len(counted) if probes_es is not None else max(1, len(timed))
    return {
        "viewers": n, "join": join, "run": run, "ready": ready,
        "connect_s": (w0 - settle) - posted - lead, "window_s": t1 - t0,
        # what one viewer read per second: the stream's rate as the viewers get it
        "events_per_s": (delivered / max(1, readers) if probes_es is not None
                         else (m1[0][1] - m0[0][1]) / readers / (t1 - t0)),
        # (with EventSource probes, which count no frames, the counters' rate for them too:
        # every viewer reads the same stream)
        "delivered_per_s": (delivered * n / max(1, readers) if probes_es is not None
                            else delivered),
        "server_cores": (c1 - c0) / (t1 - t0), "probes_cores": (p1 - p0) / (t1 - t0),
        "counters_cores": (v1 - v0) / (t1 - t0),
        "viewers_cores": (p1 - p0 + v1 - v0) / (t1 - t0), "probes": len(timed),
        "viewer_processes": len(watch.pids) + len(es_groups), "servers": len(servers),
        # every viewer read every event to run.end (the EventSource clients count only the
        # kinds they time: their run.end)
        "complete": sum(r.frames == total - after and r.ended for r in counted)
        + sum(r.ended if probes_es is not None else r.frames == total - after and r.ended
              for r in timed),
        "frame_bytes": sum(r.bytes for r in ours) / max(1, frames),
        # the server's sends a second to one viewer, as our probes (which never wait
        # between reads) saw them: the flush rate the baseline sends at
        "sends_per_s": statistics.median(
            r.reads / max(1e-9, r.last - r.first) for r in timed)
        if timed and probes_es is None else 0.0,
        "machine_busy_cores": (b1 - b0) / (t1 - t0), **fanout_counts,
        **percentiles(delays),
    }


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def finished(server: BenchServer, n: int, events: int, limit: float = 120.0
             ) -> dict[str, Any]:
    """`n` viewers opening a finished run of about `events` events at once, each from seq 0
    (the page's join): when each has the whole run (its last recv, from the moment the
    bench sent the paths), and the server's memory, its RSS sampled every 20 ms, beyond
    what it was before the viewers came."""
    watch = viewers.start("127.0.0.1", server.port, n, probes=0, limit=limit, pace=0.0)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/api/runs", json={"experiment": "flood", "params": {
            "processes": PROCESSES, "events": events // PROCESSES, "rate": 0}})
        r.raise_for_status()
        run_id = r.json()["id"]
        deadline = time.monotonic() + limit
        while client.get(f"/api/runs/{run_id}").json()["status"] == "running":
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.1)
        total = _events(client, run_id)
        size = len(client.get(f"/api/runs/{run_id}/events").content)
        rss0 = peak = _rss_kb(server.proc.pid)
        sent = time.monotonic()
        watch.connect(f"/api/runs/{run_id}/events")
        done: list[viewers.ViewerResult] = []
        # results() blocks: sample the server's memory from a thread meanwhile.
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(0.02):
                peak = max(peak, _rss_kb(server.proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        c0 = viewers.cpu_seconds([server.proc.pid])
        _, done = watch.results(limit)
        c1 = viewers.cpu_seconds([server.proc.pid])
        stop.set()
        sampler.join()
    whole = sorted(r.last - sent for r in done if r.ended and r.frames == total)
    return {"viewers": n, "events": total, "bytes": size, "complete": len(whole),
            "whole_p50_s": whole[len(whole) // 2] if whole else float("nan"),
            "whole_max_s": whole[-1] if whole else float("nan"),
            "server_cpu_s": c1 - c0, "rss_growth_mb": (peak - rss0) / 1024}


def finished_line(c: dict[str, Any]) -> str:
    return (f"finished run of {c['events']:,} events ({c['bytes'] / 1e6:.1f} MB), "
            f"{c['viewers']:,} viewers from seq 0 at once: {c['complete']} whole, p50 "
            f"{c['whole_p50_s']:.1f} s, last {c['whole_max_s']:.1f} s; server CPU "
            f"{c['server_cpu_s']:.1f} s, memory +{c['rss_growth_mb']:.0f} MB at most")


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
    joined = "from seq 0" if c.get("join") == "start" else "?after=   "
    return (f"{c.get('run', 'flood'):>5} {joined} {c['viewers']:>5} viewers: p50/p95/p99 "
            f"{c['p50']:6.1f} {c['p95']:6.1f} "
            f"{c['p99']:7.1f} ms (n={c['n']}), {c['events_per_s']:6.0f} events/s, server "
            f"{c['server_cores']:.2f} cores, viewers {c['probes_cores']:.2f} cores ({c['probes']} "
            f"probes) + {c['counters_cores']:.2f} ({c['viewer_processes'] - 1} processes), "
            f"complete {c['complete']}/{c['viewers']}, "
            f"{c['ready']} connected in {c['connect_s']:.1f} s, a send every "
            f"{flush_of(c) * 1e3:.0f} ms, machine busy {c['machine_busy_cores']:.2f} cores")


# p99 lateness goals, ms, by (run, viewers): issue 25's for a class joining from seq 0
# (the flood's are issue 17's for `?after=` too); CPU per delivery beyond one viewer's, µs.
P99_GOALS = {("flood", 200): 30.0, ("flood", 500): 50.0, ("flood", 1000): 100.0,
             ("gil", 200): 50.0, ("gil", 500): 50.0, ("gil", 1000): 100.0}
CPU_GOAL_US = 0.5


def _goal(ok: bool) -> str:
    return "met" if ok else "MISSED"


def p99_against(c: dict[str, Any], goal: float | None) -> str:
    """A case's p99 against its goal: met, MISSED, or '-' if nothing was timed."""
    if goal is None:
        return ""
    if c["n"] < 2:
        return f"<= {goal:.0f}: not timed"
    return f"<= {goal:.0f}: {_goal(c['p99'] <= goal)}"


def cpu_against(us: float) -> str:
    """CPU per delivery against its goal; a figure below 0 says the server had less CPU
    with more viewers (a machine busy with other work), not that it costs nothing."""
    if us != us:
        return ""
    if us < 0:
        return f"<= {CPU_GOAL_US}: unknown (< 0)"
    return f"<= {CPU_GOAL_US}: {_goal(us <= CPU_GOAL_US)}"


def machine() -> str:
    """What the machine was doing: its cores and load averages (1, 5, 15 min), now."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.1f} / {five:.1f} / {fifteen:.1f}"


def revision() -> str:
    """The tree measured: its commit, and `+` if it has changes not committed."""
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "app", "bench"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return rev + ("+" if dirty else "")


Row = tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]


def table(rows: list[Row], started: str, ended: str) -> str:
    """The cases as one markdown table: (a case, the 1-viewer case of its run and join or
    None, its bare sender or None) per row, and the machine's load at the start and end."""
    lines = [f"`python -m bench.fanout {' '.join(sys.argv[1:])}` at {revision()}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; before: {started}; "
             f"after: {ended}. p99: emit-to-client lateness over the steady window; "
             "CPU: server CPU µs per delivered event beyond one viewer's; bare sender: one "
             "sendall() per viewer per flush at the same events/s, frame size and flush "
             "(bench.send_baseline); machine busy: every process's CPU over the window, of "
             f"{os.cpu_count()} cores.", "",
             "| run | join | viewers | p50 / p95 / p99 ms | p99 goal | complete | "
             "connected | CPU µs | bare sender µs | CPU goal | server cores | machine busy |",
             "|---|---|---:|---|---|---|---|---:|---:|---|---:|---:|"]
    for c, one, bare in rows:
        join = "from seq 0" if c["join"] == "start" else "`?after=`"
        goal = P99_GOALS.get((c["run"], c["viewers"]))
        p99_goal = p99_against(c, goal)
        us = per_event_us(one, c) if one is not None and c["viewers"] > 1 else float("nan")
        cpu = f"{us:.2f}" if us == us else "-"
        cpu_goal = cpu_against(us)
        sender = f"{bare['per_event_us']:.2f}" if bare is not None else "-"
        lines.append(
            f"| {c['run']} | {join} | {c['viewers']:,} | {c['p50']:.1f} / {c['p95']:.1f} / "
            f"{c['p99']:.1f} (n={c['n']:,}) | {p99_goal} | {c['complete']:,}/{c['viewers']:,} | "
            f"{c['ready']:,} in {c['connect_s']:.1f} s | {cpu} | {sender} | {cpu_goal} | "
            f"{c['server_cores']:.2f} | {c['machine_busy_cores']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 200, 500])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--join", nargs="+", choices=["after", "start"],
                        default=["after", "start"],
                        help="join from the current seq (?after=), from seq 0, or both")
    parser.add_argument("--run", nargs="+", choices=["flood", "gil"], default=["flood"])
    parser.add_argument("--backlog", type=float, default=2.0,
                        help="s of the run before the viewers join from seq 0")
    parser.add_argument("--baseline", action="store_true",
                        help="also the bare sender's CPU per delivered event")
    parser.add_argument("--finished", type=int, metavar="EVENTS",
                        help="instead: --viewers opening a finished run of EVENTS at once")
    args = parser.parse_args()
    if args.finished:
        with BenchServer("--max-streams", "2000") as server:
            for n in args.viewers:
                print(finished_line(finished(server, n, args.finished)), flush=True)
        return
    started = machine()
    rows: list[Row] = []
    for run in args.run:
        for join in args.join:
            with BenchServer("--max-streams", "2000") as server:
                cases = [case(server, n, args.seconds, join=join, run=run,
                              backlog=args.backlog) for n in args.viewers]
            for c in cases:
                print(line(c), flush=True)
            one = cases[0] if cases[0]["viewers"] == 1 else None
            for c in cases:
                bare = None
                if one is not None and c is not one:
                    print(f"  server CPU per delivered event beyond one viewer's, "
                          f"{c['viewers']} viewers: {per_event_us(one, c):.2f} µs", flush=True)
                    if args.baseline:
                        bare = baseline(one, c, args.seconds)
                        print(f"  one sendall() per viewer per {flush_of(c) * 1e3:.0f} ms "
                              f"flush, bare sender: {bare['per_event_us']:.2f} µs "
                              f"(viewers {bare['many']['viewers_cores']:.2f} cores)",
                              flush=True)
                rows.append((c, one, bare))
    print()
    print(table(rows, started, machine()), flush=True)


if __name__ == "__main__":
    main()
