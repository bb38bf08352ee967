"""Viewers spread over 1, 2 and 3 replicas sharing runs through Redis (issue 16), beside
the single in-memory server: emit-to-client latency, server CPU per 1,000 deliveries, and
Redis memory per 100k events.

python -m bench.replicas [--quick]   prints a markdown table; never fails.

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

import asyncio
import multiprocessing
import os
import shutil
import socket
import sys
import time
from typing import Any

import httpx

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
    quick = "--quick" in sys.argv
    started = time.monotonic()
    try:
        results = run(quick)
    except Exception as exc:  # a benchmark reports, it never fails
        print(f"bench.replicas did not complete: {exc!r}")
        return
    print(table(results))
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
