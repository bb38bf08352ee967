"""Every lesson at its defaults (time_scale 1): wall time and events, through a real server.

Runs in the bench process: `python -m bench.lessons`. Wall time is from POST /api/runs to
the stream's run.end; events include the kernel sampler's proc.state events.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.server import BenchServer

LESSONS: list[tuple[str, dict[str, Any]]] = [
    ("process_start", {}), ("join", {}), ("daemon", {}),
    ("zombie_orphan", {"mode": "zombie"}), ("zombie_orphan", {"mode": "orphan"}),
    ("terminate", {}), ("ticket_rush", {}), ("ticket_rush", {"lock": False}),
    ("queue_basics", {}), ("producer_consumer", {}), ("producer_consumer", {"mode": "naive"}),
    ("pool_apply", {}), ("pool_apply", {"mode": "apply"}), ("pool_callback", {}),
    ("executor_map", {}), ("socket_server", {}),
    ("socket_server", {"mode": "process_per_connection"}),
    ("gil", {}), ("gil", {"mode": "threads"}),
]


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows = []
    with BenchServer() as server, httpx.Client(base_url=server.url, timeout=120) as client:
        for experiment, params in LESSONS:
            if quick:
                params = {**params, "time_scale": 0.05}
            start = time.monotonic()
            run_id = client.post("/api/runs", json={"experiment": experiment,
                                                    "params": params}).json()["id"]
            kinds: dict[str, int] = {}
            with client.stream("GET", f"/api/runs/{run_id}/events.ndjson") as response:
                for line in response.iter_lines():
                    kind = line.split('"kind":"', 1)[1].split('"', 1)[0]
                    kinds[kind] = kinds.get(kind, 0) + 1
            wall = time.monotonic() - start
            final = client.get(f"/api/runs/{run_id}").json()
            rows.append({"experiment": experiment, "params": params, "wall_s": wall,
                         "events": sum(kinds.values()), "state_events": kinds.get("proc.state", 0),
                         "processes": kinds.get("proc.start", 0), "status": final["status"]})
    return rows


if __name__ == "__main__":
    print(f"{'lesson':<46} {'wall s':>7} {'events':>7} {'(proc.state)':>12} {'procs':>6} status")
    for row in run():
        name = row["experiment"] + " " + ",".join(f"{k}={v}" for k, v in row["params"].items())
        print(f"{name:<46} {row['wall_s']:>7.2f} {row['events']:>7} {row['state_events']:>12} "
              f"{row['processes']:>6} {row['status']}")
