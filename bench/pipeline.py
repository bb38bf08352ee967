"""The event pipeline: throughput against a bare Pipe, latency, and the server's memory.

Runs in the bench process. Starts a real server (`python -m procscope`, with the `flood`
load generator enabled), drives it over loopback, and measures in the same invocation the
baseline it is compared with.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import struct
import tempfile
import time
from typing import Any

import httpx
import psutil

from bench.clients import run_clients
from bench.server import BenchServer

EVENT_BYTES = 180  # about one bench.tick event as the reporter frames it


def _writer(conn: Any, count: int, payload: bytes) -> None:
    # The first message carries when it was sent: the clock starts at the first emit,
    # as it does for procscope's figure.
    conn.send_bytes(struct.pack("d", time.monotonic()) + payload[8:])
    for _ in range(count - 1):
        conn.send_bytes(payload)
    conn.close()


def raw_pipe(processes: int, per_process: int) -> float:
    """Messages/s: the same processes writing the same number of messages to one Pipe."""
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    payload = b"x" * EVENT_BYTES
    workers = [ctx.Process(target=_writer, args=(writer, per_process, payload))
               for _ in range(processes)]
    for p in workers:
        p.start()
    writer.close()
    received = 0
    first = float("inf")
    total = processes * per_process
    while received < total:
        message = reader.recv_bytes()
        if not message.startswith(b"xxxxxxxx"):
            first = min(first, struct.unpack_from("d", message)[0])
        received += 1
    last = time.monotonic()
    for p in workers:
        p.join()
    return total / (last - first)


def _start(server: BenchServer, experiment: str, params: dict[str, Any]) -> str:
    r = httpx.post(server.url + "/api/runs", json={"experiment": experiment, "params": params})
    r.raise_for_status()
    run_id: str = r.json()["id"]
    return run_id


def _clients(server: BenchServer, run_id: str, kind: str, clients: int, probes: int,
             ) -> list[tuple[int, float, float, list[float]]]:
    """Read the run with `clients` SSE clients in a separate process; their stats."""
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=run_clients,
                       args=("127.0.0.1", server.port, run_id, kind, clients, probes, there))
    proc.start()
    there.close()
    out: list[tuple[int, float, float, list[float]]] = here.recv()
    proc.join()
    return out


def _first_emit(server: BenchServer, run_id: str, kind: str) -> float:
    """When the run's first `kind` event was emitted, on this machine's monotonic clock."""
    t0 = None
    with httpx.stream("GET", f"{server.url}/api/runs/{run_id}/events.ndjson") as response:
        for line in response.iter_lines():
            event = json.loads(line)
            if event["kind"] == "run.start":
                t0 = event["data"]["t0_monotonic_ns"] / 1e9
            elif event["kind"] == kind:
                assert t0 is not None
                return float(t0 + event["t"])
    raise AssertionError(f"no {kind} event in run {run_id}")


def throughput(server: BenchServer, processes: int, per_process: int, clients: int
               ) -> float:
    """Events/s from child processes to `clients` SSE clients (the slowest one's)."""
    run_id = _start(server, "flood", {"processes": processes, "events": per_process})
    stats = _clients(server, run_id, "bench.tick", clients, probes=0)
    assert all(frames == processes * per_process for frames, *_ in stats), \
        [s[0] for s in stats]
    last = max(s[2] for s in stats)
    first = _first_emit(server, run_id, "bench.tick")
    return processes * per_process / (last - first)


def history_throughput(server: BenchServer, processes: int, per_process: int
                       ) -> dict[str, float]:
    """The flood into a server with a history file: events/s to one SSE client, events/s
    onto the disk (first emit to the writer's last commit), and the file's bytes."""
    run_id = _start(server, "flood", {"processes": processes, "events": per_process})
    stats = _clients(server, run_id, "bench.tick", 1, probes=0)
    sent = max(s[2] for s in stats)
    deadline = time.monotonic() + 120
    while True:
        history = httpx.get(server.url + "/api/status").json()["history"]
        if not history["unwritten_events"] or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    written = time.monotonic()
    first = _first_emit(server, run_id, "bench.tick")
    events = httpx.get(f"{server.url}/api/runs/{run_id}").json()["events"]
    n = processes * per_process
    return {"e2e_eps": n / (sent - first), "written_eps": n / (written - first),
            "events": events, "db_bytes": history["bytes"],
            "mb_per_100k_events": history["bytes"] / events * 100_000 / 2**20}


def percentiles(delays: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(delays, n=100, method="inclusive")
    return {"p50": qs[49] * 1e3, "p95": qs[94] * 1e3, "p99": qs[98] * 1e3, "n": len(delays)}


def latency_steady(server: BenchServer, clients: int, seconds: float) -> dict[str, Any]:
    """Emit-to-client delay at 1,000 events/s (4 processes x 250/s), `clients` connected."""
    per_process = int(250 * seconds)
    run_id = _start(server, "flood", {"processes": 4, "events": per_process, "rate": 250})
    rss = []
    ctx = multiprocessing.get_context("spawn")
    probes = min(clients, 5)
    # The probes (which time every event) get a process of their own, as each student's
    # browser would: in one process with the other clients, a probe would also measure
    # how long that process takes to get round to it.
    groups = [(probes, probes)] + ([(clients - probes, 0)] if clients > probes else [])
    pipes, procs = [], []
    for count, timed in groups:
        here, there = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=run_clients, args=("127.0.0.1", server.port, run_id,
                                                     "bench.tick", count, timed, there))
        proc.start()
        there.close()
        pipes.append(here)
        procs.append(proc)
    while not pipes[0].poll(0.25):
        rss.append(server.rss())
    stats = [s for here in pipes for s in here.recv()]
    for proc in procs:
        proc.join()
    delays = [d for s in stats[:probes] for d in s[3]]
    return {**percentiles(delays), "rss_mb": max(rss) / 2**20 if rss else server.rss() / 2**20}


def latency_burst(server: BenchServer) -> dict[str, Any]:
    """Emit-to-client delay through a 100-process ticket_rush start burst, one client."""
    run_id = _start(server, "ticket_rush", {"n": 100, "time_scale": 0.1})
    stats = _clients(server, run_id, "proc.start", 1, probes=1)
    return percentiles(stats[0][3]) if stats[0][3] else {}


def run(quick: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    per_process = 5_000 if quick else 25_000
    processes = 4
    results["raw_pipe_eps"] = raw_pipe(processes, per_process)
    with BenchServer() as server:
        for clients in ((1,) if quick else (1, 50, 200)):
            results[f"e2e_eps_{clients}"] = throughput(server, processes, per_process, clients)
        results["burst"] = latency_burst(server)
        for clients in ((1,) if quick else (1, 50, 200)):
            results[f"steady_{clients}"] = latency_steady(server, clients, 2 if quick else 5)
    # The same flood into a server that keeps a history file (the one above keeps it in
    # memory, --db :memory:), and that server's RSS once the run is on disk.
    with tempfile.TemporaryDirectory() as tmp, \
            BenchServer("--db", os.path.join(tmp, "history.sqlite3")) as server:
        results["db"] = history_throughput(server, processes, per_process)
        results["db"]["rss_mb"] = server.rss() / 2**20
    # Memory on a fresh server: idle, then holding one 100,000-event run, then also
    # streaming a 1,000 events/s run to 200 clients.
    with BenchServer() as server:
        results["rss_idle_mb"] = server.rss() / 2**20
        events = 2_500 if quick else 25_000
        run_id = _start(server, "flood", {"processes": 4, "events": events})
        _clients(server, run_id, "bench.tick", 1, probes=0)
        results["rss_100k_mb"] = server.rss() / 2**20
        results["held_events"] = 4 * events
        results["rss_100k_200_clients_mb"] = latency_steady(
            server, 20 if quick else 200, 2 if quick else 5)["rss_mb"]
    return results


def history_vs_memory(per_process: int = 25_000) -> dict[str, Any]:
    """Only the flood, without the database and with it (`python -m bench.pipeline
    --history`): 4 x 25,000 events, one SSE client."""
    with BenchServer() as server:
        memory = throughput(server, 4, per_process, 1)
    with tempfile.TemporaryDirectory() as tmp, \
            BenchServer("--db", os.path.join(tmp, "history.sqlite3")) as server:
        db = history_throughput(server, 4, per_process)
        db["rss_mb"] = server.rss() / 2**20
    return {"memory_e2e_eps": memory, "db": db}


if __name__ == "__main__":
    import json
    import sys

    if "--history" in sys.argv:
        print(json.dumps(history_vs_memory(), indent=1))
    else:
        print(json.dumps(run(quick=bool(os.environ.get("QUICK"))), indent=1))
    _ = psutil
