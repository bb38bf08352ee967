"""Viewers spread over 1, 2 and 3 replicas sharing runs through Redis (issue 16), beside
the single in-memory server: emit-to-client latency, server CPU per 1,000 deliveries, and
Redis memory per 100k events; and a class joining a live run from seq 0 on 2 replicas
(issue 25), beside a single server with the same viewers.

python -m bench.replicas [--quick] [--join-only] [--join-viewers N] [--join-run flood gil]
prints markdown tables; never fails. --quick leaves the join out.

The join (`join_case`): bench.fanout's from-seq-0 case (`fanout.case(..., join="start")`:
20 npm `eventsource` timing clients and raw counters, all joining from seq 0 within about a
second once the run has 2 s of backlog) with its viewers spread evenly over two replicas
(the run is the first's), for the gil lesson (threads, work=3) and the 1,000 events/s
flood; each beside the same case on a single in-memory server, in the same invocation and
in turn. Each configuration's 1-viewer case is measured too, for the server CPU per
delivered event beyond one viewer's; the replicas' server CPU is both replicas' and
redis-server's.

Runs in the bench process. A real `redis-server` (tests/redis_server.py: a temporary
directory, appendonly with fsync always, as the tests run it) and real servers (`python -m
app --redis URL --port P --db :memory:`, bench.server.BenchServer) on free loopback ports.
Three replicas are started once; the "k replicas" rows use the first k of them (the run
is started on the first), and count the CPU of those k and of redis-server. The viewers
are bench.clients' raw asyncio SSE clients, connected round-robin over the k replicas, in
processes of their own: a few probes (which time every event against the run's
t0_monotonic_ns + the event's t, the same monotonic clock) in one, the counters in another.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

import httpx

from bench import fanout
from bench.clients import sse_client
from bench.pipeline import percentiles
from bench.server import BenchServer

PROBES = 5
RATE = 250  # events/s per process; 4 processes: 1,000 events/s
PROCESSES = 4
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (not their children), from /proc."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


async def _viewers(ports: list[int], run_id: str, first: int, count: int, probes: int,
                   limit: float) -> list[tuple[int, list[float]]]:
    tasks = [sse_client("127.0.0.1", ports[i % len(ports)], run_id, b"bench.tick",
                        probe=i - first < probes) for i in range(first, first + count)]
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), limit)
    return [(r.frames, r.delays) if not isinstance(r, BaseException) else (0, [])
            for r in results]


def _client_process(ports: list[int], run_id: str, first: int, count: int, probes: int,
                    limit: float, out: Any) -> None:
    """Entry point of a client process: viewer i reads from ports[i % len(ports)]."""
    try:
        out.send(asyncio.run(_viewers(ports, run_id, first, count, probes, limit)))
    except BaseException:  # a timeout: report nothing rather than hang the bench
        out.send([])


def _start(url: str, params: dict[str, Any]) -> str:
    r = httpx.post(url + "/api/runs", json={"experiment": "flood", "params": params},
                   timeout=30)
    r.raise_for_status()
    run_id: str = r.json()["id"]
    return run_id


def _listed(servers: list[BenchServer], run_id: str) -> None:
    """Wait (bounded) until every replica knows the run, so no viewer gets a 404."""
    deadline = time.monotonic() + 10
    for server in servers:
        while time.monotonic() < deadline:
            if httpx.get(f"{server.url}/api/runs/{run_id}", timeout=5).status_code == 200:
                break
            time.sleep(0.01)


def load(servers: list[BenchServer], extra_pids: list[int], viewers: int, seconds: float
         ) -> dict[str, Any]:
    """One 1,000 events/s run for `seconds`, `viewers` spread over `servers`."""
    ports = [s.port for s in servers]
    pids = [s.proc.pid for s in servers] + extra_pids
    per_process = int(RATE * seconds)
    cpu0 = _cpu_seconds(pids)
    run_id = _start(servers[0].url, {"processes": PROCESSES, "events": per_process,
                                     "rate": RATE})
    _listed(servers, run_id)
    limit = seconds + 60
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    probes = min(PROBES, viewers)
    for first, count, timed in ((0, probes, probes), (probes, viewers - probes, 0)):
        if count <= 0:
            continue
        here, there = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_client_process,
                           args=(ports, run_id, first, count, timed, limit, there))
        proc.start()
        there.close()
        pipes.append(here)
        procs.append(proc)
    stats: list[tuple[int, list[float]]] = []
    delays: list[float] = []
    for n, here in enumerate(pipes):
        got = here.recv() if here.poll(limit + 10) else []
        stats += got
        if n == 0:
            delays = [d for _, ds in got for d in ds]
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    cpu = _cpu_seconds(pids) - cpu0
    delivered = sum(frames for frames, _ in stats)
    out: dict[str, Any] = {"viewers": viewers, "delivered": delivered,
                           "expected": viewers * PROCESSES * per_process,
                           "cpu_s": cpu, "cpu_ms_per_1k": cpu / delivered * 1e6
                           if delivered else float("nan")}
    if len(delays) >= 2:
        out.update(percentiles(delays))
    return out


def _used_memory(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"INFO memory\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while b"used_memory:" not in data or not data.endswith(b"\r\n") \
                and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO")


def redis_memory(server: BenchServer, redis_url: str, redis_port: int, per_process: int
                 ) -> dict[str, Any]:
    """used_memory before and after one flood run of a known event count (as fast as
    the workers go), read to its end by one client; and the run's stream alone (MEMORY
    USAGE, every node counted), which other clients' buffers do not blur."""
    import redis

    before = _used_memory(redis_port)
    run_id = _start(server.url, {"processes": PROCESSES, "events": per_process})
    asyncio.run(asyncio.wait_for(sse_client("127.0.0.1", server.port, run_id, b"bench.tick",
                                            probe=False), 120))
    time.sleep(0.5)  # the last batch XADDed
    after = _used_memory(redis_port)
    events = httpx.get(f"{server.url}/api/runs/{run_id}", timeout=10).json()["events"]
    with redis.Redis.from_url(redis_url) as client:
        stream = int(client.memory_usage(f"procscope:log:{run_id}", samples=0) or 0)
    ndjson = len(httpx.get(f"{server.url}/api/runs/{run_id}/events.ndjson", timeout=60).content)
    return {"events": events, "bytes": after - before, "stream_bytes": stream,
            "json_bytes": ndjson / events,
            "mb_per_100k": (after - before) / events * 100_000 / 2**20,
            "stream_mb_per_100k": stream / events * 100_000 / 2**20}


def held_memory(redis_url: str, runs: int, per_process: int) -> dict[str, Any]:
    """A follower replica's RSS after it streamed `runs` finished runs, when it lets a
    finished run go after 1 s (app.cluster.redis_held) and when it holds each for an hour (as
    every run was held before): what a long-lived replica grows by."""
    out: dict[str, Any] = {"runs": runs, "events": 0}
    hold = os.environ.get("PROCSCOPE_REDIS_HOLD_SECONDS")
    try:
        os.environ["PROCSCOPE_REDIS_HOLD_SECONDS"] = "1"
        short = BenchServer("--redis", redis_url).__enter__()
        os.environ["PROCSCOPE_REDIS_HOLD_SECONDS"] = "3600"
        long = BenchServer("--redis", redis_url).__enter__()
    finally:
        if hold is None:
            os.environ.pop("PROCSCOPE_REDIS_HOLD_SECONDS", None)
        else:
            os.environ["PROCSCOPE_REDIS_HOLD_SECONDS"] = hold
    try:
        with BenchServer("--redis", redis_url) as owner:
            start_rss = {"short": short.rss(), "long": long.rss()}
            for _ in range(runs):
                run_id = _start(owner.url, {"processes": PROCESSES, "events": per_process})
                for server in (owner, short, long):
                    _listed([server], run_id)
                    asyncio.run(asyncio.wait_for(sse_client(
                        "127.0.0.1", server.port, run_id, b"bench.tick", probe=False), 120))
                out["events"] += httpx.get(f"{owner.url}/api/runs/{run_id}",
                                           timeout=10).json()["events"]
            time.sleep(3)  # past the 1 s hold, and a tick
            for name, server in (("short", short), ("long", long)):
                cluster = httpx.get(f"{server.url}/api/status", timeout=10).json()["cluster"]
                out[name] = {"rss_growth": server.rss() - start_rss[name],
                             "held_runs": cluster["held_runs"],
                             "held_events": cluster["held_events"]}
    finally:
        short.__exit__(None, None, None)
        long.__exit__(None, None, None)
    return out


def run(quick: bool) -> dict[str, Any]:
    seconds = 3.0 if quick else 5.0
    sizes = (200,) if quick else (200, 500)
    results: dict[str, Any] = {"seconds": seconds, "rows": []}
    with BenchServer() as single:
        for viewers in sizes:
            results["rows"].append(("single server, in memory", load([single], [], viewers,
                                                                      seconds)))
    if shutil.which("redis-server") is None:
        results["no_redis"] = True
        return results
    from tests.redis_server import RedisServer

    redis = RedisServer()
    try:
        assert redis.proc is not None
        with BenchServer("--redis", redis.url) as a, BenchServer("--redis", redis.url) as b, \
                BenchServer("--redis", redis.url) as c:
            replicas = [a, b, c]
            for k in (1, 2, 3):
                for viewers in sizes:
                    label = f"{k} replica{'s' if k > 1 else ''} + Redis"
                    results["rows"].append((label, load(replicas[:k], [redis.proc.pid],
                                                        viewers, seconds)))
            results["redis"] = redis_memory(a, redis.url, redis.port,
                                            5_000 if quick else 25_000)
        results["held"] = held_memory(redis.url, 3 if quick else 10, 2_500 if quick else 5_000)
    finally:
        redis.close()
    return results


JOIN_RUNS: tuple[fanout.Run, ...] = ("gil", "flood")


def join_case(viewers: int, runs: Sequence[fanout.Run] = JOIN_RUNS, seconds: float = 5.0,
              backlog: float = 2.0) -> dict[str, Any]:
    """`viewers` joining a live run from seq 0: on one in-memory server, then on two replicas
    sharing a redis-server (the viewers spread over both), each with its 1-viewer case."""
    from tests.redis_server import RedisServer

    out: dict[str, Any] = {"viewers": viewers, "seconds": seconds, "rows": [],
                           "started": fanout.machine()}
    redis = RedisServer()
    try:
        assert redis.proc is not None
        redis_pid = redis.proc.pid
        with BenchServer("--max-streams", "2000") as single, \
                BenchServer("--redis", redis.url, "--max-streams", "2000") as a, \
                BenchServer("--redis", redis.url, "--max-streams", "2000") as b:
            for run in runs:
                for label, spread, extra in (("single server, in memory", [], []),
                                             ("2 replicas + Redis", [b], [redis_pid])):
                    server = single if not spread else a
                    cases = [fanout.case(server, n, seconds, join="start", run=run,
                                         backlog=backlog, spread=spread, extra_pids=extra)
                             for n in (1, viewers)]
                    for c in cases:
                        print(f"  {label:>24}: {fanout.line(c)}", flush=True)
                    out["rows"].append((label, cases[0], cases[1]))
    finally:
        redis.close()
    out["ended"] = fanout.machine()
    return out


def join_table(results: dict[str, Any]) -> str:
    """The join's cases, each replicas row under its single-server baseline."""
    lines = [f"A class joining a live run from seq 0 (`python -m bench.replicas "
             f"{' '.join(sys.argv[1:])}`, at {fanout.revision()}): {results['viewers']:,} "
             "viewers, on one in-memory server and spread evenly over 2 replicas sharing a "
             "redis-server (the run on the first); 20 of them npm `eventsource` timing "
             f"clients, the rest raw counters; a {results['seconds']:.0f} s window. CPU: "
             "server CPU µs per delivered event beyond one viewer's (the replicas': both "
             "replicas' and redis-server's); joined, cells read / sent: the servers' "
             "/api/status `fanout` counters over the case (all replicas'). Before: "
             + results["started"] + "; after: " + results["ended"] + ".", "",
             "| run | configuration | viewers | p50 / p95 / p99 ms | p99 goal | complete | "
             "connected | CPU µs | against the single server | server cores | "
             "machine busy | joined | cells read / sent |",
             "|---|---|---:|---|---|---|---|---:|---|---:|---:|---:|---|"]
    single: dict[str, tuple[dict[str, Any], float]] = {}
    for label, one, c in results["rows"]:
        us = fanout.per_event_us(one, c)
        goal = fanout.P99_GOALS.get((c["run"], c["viewers"]))
        p99_goal = fanout.p99_against(c, goal)
        against = ""
        if c["run"] in single:
            base, base_us = single[c["run"]]
            against = (f"p99 {c['p99'] / base['p99']:.2f}x, CPU {us / base_us:.2f}x"
                       if base["p99"] and base_us > 0 else "")
        else:
            single[c["run"]] = (c, us)
        lines.append(
            f"| {c['run']} | {label} | {c['viewers']:,} | {c['p50']:.1f} / {c['p95']:.1f} / "
            f"{c['p99']:.1f} (n={c['n']:,}) | {p99_goal} | "
            f"{c['complete']:,}/{c['viewers']:,} | {c['ready']:,} in {c['connect_s']:.1f} s | "
            f"{us:.2f} | {against} | {c['server_cores']:.2f} | "
            f"{c['machine_busy_cores']:.2f} | {c['joined']:,} | "
            f"{c['cells_read']:,} / {c['cells_sent']:,} |")
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    lines = [f"1,000 events/s for {results['seconds']:.0f} s ({PROCESSES} processes x "
             f"{RATE}/s), `python -m bench.replicas`, {os.cpu_count()} cores", "",
             "| configuration | viewers | p50 ms | p95 ms | p99 ms | delivered | "
             "server CPU ms per 1,000 deliveries |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, r in results["rows"]:
        p = [f"{r[q]:.1f}" if q in r else "-" for q in ("p50", "p95", "p99")]
        lines.append(f"| {label} | {r['viewers']} | {p[0]} | {p[1]} | {p[2]} | "
                     f"{r['delivered'] / r['expected']:.1%} | {r['cpu_ms_per_1k']:.1f} |")
    lines.append("")
    if results.get("no_redis"):
        lines.append("redis-server is not installed: replica rows left out.")
    elif "redis" in results:
        m = results["redis"]
        lines.append(f"Redis memory: {m['stream_mb_per_100k']:.1f} MB per 100k events in "
                     f"the run's stream (MEMORY USAGE: {m['stream_bytes'] / 2**20:.1f} MB "
                     f"for a {m['events']:,}-event run, {m['json_bytes']:.0f} bytes of JSON "
                     f"an event); used_memory grew {m['bytes'] / 2**20:.1f} MB "
                     f"({m['mb_per_100k']:.1f} MB per 100k, client buffers included)")
    if "held" in results:
        h = results["held"]
        lines.append("")
        lines.append(f"A follower replica after streaming {h['runs']} finished runs "
                     f"({h['events']:,} events) to their ends:")
        for name, label in (("short", "finished runs let go after 1 s"),
                            ("long", "each held for an hour (as before)")):
            r = h[name]
            lines.append(f"- {label}: RSS grew {r['rss_growth'] / 2**20:.1f} MB, "
                         f"{r['held_runs']} runs ({r['held_events']:,} events) held")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fewer viewers and seconds; the join left out")
    parser.add_argument("--join-only", action="store_true",
                        help="only the class joining from seq 0")
    parser.add_argument("--join-viewers", type=int, default=1000)
    parser.add_argument("--join-run", nargs="+", choices=JOIN_RUNS, default=list(JOIN_RUNS))
    args = parser.parse_args()
    started = time.monotonic()
    try:
        if not args.join_only:
            print(table(run(args.quick)), flush=True)
        if shutil.which("redis-server") is None:
            print("redis-server is not installed: the join on replicas left out.")
        elif not args.quick:
            print()
            runs = cast(list[fanout.Run], args.join_run)
            print(join_table(join_case(args.join_viewers, runs)))
    except Exception as exc:  # a benchmark reports, it never fails
        print(f"bench.replicas did not complete: {exc!r}")
        return
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
