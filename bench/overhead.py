"""What procscope costs the lesson it shows: wall time with and without it, emit(), start-up.

Runs in the bench process. "Without procscope" runs the very same experiment code in a
fresh Python process with no channel installed, so every emit() is a no-op and print()
goes to /dev/null: the only difference between the two columns is procscope itself (the
event pipe, the captured stdout, the relay, the sampler reading /proc).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import ROOT, BenchServer, tree_env

PLAIN = """
import json, multiprocessing, os, sys
from types import SimpleNamespace
from procscope import experiments
from procscope.pipe.reporter import Reporter
experiment, params = sys.argv[1], json.loads(sys.argv[2])
multiprocessing.set_start_method(params["start_method"], force=True)
real = sys.stdout
sys.stdout = open(os.devnull, "w")
lesson = experiments.load(experiment)
result = lesson.main(SimpleNamespace(**params), Reporter(params["time_scale"]))
real.write(json.dumps(result) + "\\n")
"""

CASES: list[tuple[str, dict[str, Any]]] = [
    ("ticket_rush", {"n": 100, "lock": True, "time_scale": 0.1}),
    ("ticket_rush", {"n": 100, "lock": False, "time_scale": 0.1}),
    ("join", {}),
    ("pool_apply", {"mode": "apply_async"}),
    ("pool_apply", {"mode": "apply", "tasks": 4, "task_seconds": 0.5}),
    ("gil", {"mode": "processes"}),
    ("gil", {"mode": "threads"}),
]


def _full_params(experiment: str, params: dict[str, Any]) -> dict[str, Any]:
    from procscope.live import catalog

    return catalog.PARAMS[experiment](**params).model_dump()


def plain(experiment: str, params: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """The lesson's main() in a fresh Python with no channel (emit() a no-op), from the tree
    at `root`."""
    out = subprocess.run([sys.executable, "-c", PLAIN, experiment,
                          json.dumps(_full_params(experiment, params))],
                         cwd=root, env=tree_env(root), capture_output=True, text=True,
                         check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def under_procscope(server: BenchServer, experiment: str, params: dict[str, Any]
                    ) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        run = client.post("/api/runs", json={"experiment": experiment, "params": params})
        run.raise_for_status()
        run_id = run.json()["id"]
        with client.stream("GET", f"/api/runs/{run_id}/events.ndjson") as response:
            for _ in response.iter_lines():
                pass
        final = client.get(f"/api/runs/{run_id}").json()
    assert final["status"] == "succeeded", final
    result: dict[str, Any] = final["result"]
    return result


def lesson_overhead(server: BenchServer, repeats: int, cases: list[tuple[str, dict[str, Any]]]
                    ) -> list[dict[str, Any]]:
    rows = []
    for experiment, params in cases:
        with_ps, without = [], []
        speed_with, speed_without = [], []
        for _ in range(repeats):  # alternate, so drift in machine load hits both columns
            a = plain(experiment, params)
            b = under_procscope(server, experiment, params)
            without.append(a["elapsed"])
            with_ps.append(b["elapsed"])
            if "speedup" in a:
                speed_without.append(a["speedup"])
                speed_with.append(b["speedup"])
        row = {"experiment": experiment, "params": params,
               "plain_s": statistics.median(without), "procscope_s": statistics.median(with_ps)}
        row["ratio"] = row["procscope_s"] / row["plain_s"]
        if speed_with:
            row["speedup_plain"] = statistics.median(speed_without)
            row["speedup_procscope"] = statistics.median(speed_with)
        rows.append(row)
    return rows


def emit_cost(calls: int = 100_000) -> dict[str, float]:
    """µs per emit() in a process whose channel is a pipe drained by another thread."""
    from procscope.pipe import reporter

    read_fd, channel = reporter.Channel.open()

    def drain() -> None:
        while os.read(read_fd, 1 << 16):
            pass

    drainer = threading.Thread(target=drain)
    drainer.start()
    saved = reporter._channel
    reporter._channel = channel
    try:
        start = time.perf_counter()
        for i in range(calls):
            reporter.emit("bench.tick", i=i)
        per_call = (time.perf_counter() - start) / calls
        start = time.perf_counter()
        for _ in range(calls):
            reporter.current_cpu()
        getcpu = (time.perf_counter() - start) / calls
    finally:
        reporter._channel = saved
        os.close(channel.fd)
        drainer.join()
        os.close(read_fd)
    return {"emit_us": per_call * 1e6, "sched_getcpu_us": getcpu * 1e6}


def startup(server: BenchServer, counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """Seconds to start and join N processes per start method, with and without procscope."""
    rows = []
    for method in ("fork", "forkserver", "spawn"):
        for n in counts:
            params = {"processes": n, "events": 1, "start_method": method}
            rows.append({"start_method": method, "processes": n,
                         "plain_s": plain("flood", params)["elapsed"],
                         "procscope_s": under_procscope(server, "flood", params)["elapsed"]})
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    with BenchServer() as server:
        cases = CASES[:2] if quick else CASES
        scaled = [(e, {**p, "time_scale": p.get("time_scale", 0.25 if quick else 1.0)})
                  for e, p in cases]
        return {
            "lessons": lesson_overhead(server, 1 if quick else 3, scaled),
            "emit": emit_cost(20_000 if quick else 200_000),
            "startup": startup(server, (100,) if quick else (100, 500)),
        }


if __name__ == "__main__":
    print(json.dumps(run(quick=bool(os.environ.get("QUICK"))), indent=1))
