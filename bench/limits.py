"""Issue 17's table ("Close to the limit"): each figure beside its baseline, for this tree
and (with --before REV) an earlier commit, measured interleaved in one invocation.

Runs in the bench process. How each figure is measured:

- start and join 100 forked processes: `flood` with processes=100, events=1,
  start_method=fork; the figure is the lesson's own `elapsed` (time.monotonic() in the
  run's main, from before the first start() to after the last join()). Under procscope:
  POST /api/runs to a real server of that tree (defaults: the kernel sampler at up to
  2 kHz within 0.15 of a core, the switch recorder, the relay; `--db :memory:`), watched
  by one SSE viewer as the page would (a raw-socket reader in a thread of the bench, on
  the stream from its first event). Plain: the same main() in a fresh `python -c` of
  that tree with no channel (emit() a no-op, prints to /dev/null).
- ticket_rush n=100 lock off, time_scale 0.1: the same two ways, its `elapsed`.
- gil processes speed-up, nobody watching: the same two ways, its `speedup` (CPU seconds
  over wall seconds); under procscope no stream is open (the end is polled on the REST
  API every 0.1 s).
- events/s, 4 processes -> 1 SSE client: `flood` 4 x 25,000 events as fast as they go;
  from its first bench.tick's emit to the viewer's recv() of its last, against
  bench.pipeline.raw_pipe (the same processes writing the same number of 180-byte
  messages to one multiprocessing.Pipe, one reader).
- the fan-out rows: bench.fanout (N viewers of a 1,000 events/s run, joining from its
  current seq, and joining from seq 0 as the page does, the class opening the run after
  2 s of it) and bench.send_baseline (one send() per viewer per flush).

Every repetition measures the baseline and each tree in turn (plain, before, after, plain,
before, after, ...) so that a change in the machine's load hits all columns alike; every
repetition is kept in the JSON and the spread is printed.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench import fanout, overhead, pipeline
from bench.server import BenchServer
from bench.trees import Tree
from bench.viewers import END, TICK

STARTUP = ("flood", {"processes": 100, "events": 1, "start_method": "fork"})
RUSH = ("ticket_rush", {"n": 100, "lock": False, "time_scale": 0.1})
GIL = ("gil", {"mode": "processes"})


class _Watcher(threading.Thread):
    """One SSE viewer in a thread of the bench: a blocking raw socket, frames counted; its
    recv() time of the last bench.tick. Connected within a millisecond of the POST."""

    def __init__(self, port: int, run_id: str) -> None:
        super().__init__(name=f"watch-{run_id}", daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.last_tick = 0.0
        self.ticks = 0

    def run(self) -> None:
        tail = b""
        with self.sock:
            while chunk := self.sock.recv(1 << 16):
                now = time.monotonic()
                data = tail[-(len(TICK) - 1):] + chunk
                n = data.count(TICK)
                if n:
                    self.ticks += n
                    self.last_tick = now
                if END in data:
                    return
                tail = chunk


def _run(server: BenchServer, experiment: str, params: dict[str, Any], watch: bool
         ) -> tuple[dict[str, Any], _Watcher | None]:
    """One run of a lesson under procscope, to its end; its record and its watcher."""
    with httpx.Client(base_url=server.url, timeout=120) as client:
        r = client.post("/api/runs", json={"experiment": experiment, "params": params})
        r.raise_for_status()
        run_id = r.json()["id"]
        watcher = _Watcher(server.port, run_id) if watch else None
        if watcher:
            watcher.start()
            watcher.join(300)
        deadline = time.monotonic() + 300
        while True:
            final: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
            if final["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # nobody watching: the end is polled, cheaply
    assert final["status"] == "succeeded", final
    return final, watcher


def _lesson(key: str, case: tuple[str, dict[str, Any]], trees: list[Tree],
            servers: dict[str, BenchServer], repeats: int, watch: bool) -> dict[str, Any]:
    experiment, params = case
    out: dict[str, Any] = {"experiment": experiment, "params": params, "watched": watch,
                           "plain": []}
    for tree in trees:
        out[tree.name] = []
    for _ in range(repeats):
        result = overhead.plain(experiment, params, trees[-1].root)
        out["plain"].append(result[key])
        for tree in trees:
            final, _ = _run(servers[tree.name], experiment, params, watch)
            out[tree.name].append(final["result"][key])
    return out


def flood_watched(server: BenchServer, per_process: int) -> tuple[str, _Watcher]:
    """A flood of 4 x `per_process` events as fast as they go, read to its end by one
    viewer connected at once: its run id and the viewer (its ticks, its last one's time)."""
    r = httpx.post(server.url + "/api/runs", json={"experiment": "flood", "params": {
        "processes": 4, "events": per_process}})
    r.raise_for_status()
    run_id = r.json()["id"]
    watcher = _Watcher(server.port, run_id)
    watcher.start()
    watcher.join(300)
    return run_id, watcher


def _throughput_once(server: BenchServer, per_process: int) -> float:
    run_id, watcher = flood_watched(server, per_process)
    assert watcher.ticks == 4 * per_process, watcher.ticks
    first = pipeline._first_emit(server, run_id, "bench.tick")
    return 4 * per_process / (watcher.last_tick - first)


def throughput(trees: list[Tree], servers: dict[str, BenchServer], repeats: int,
               per_process: int) -> dict[str, Any]:
    out: dict[str, Any] = {"per_process": per_process, "raw_pipe": []}
    for tree in trees:
        out[tree.name] = []
    for _ in range(repeats):
        out["raw_pipe"].append(pipeline.raw_pipe(4, per_process))
        for tree in trees:
            out[tree.name].append(_throughput_once(servers[tree.name], per_process))
    return out


def fan_out(trees: list[Tree], plan: dict[int, int], seconds: float,
            server_args: tuple[str, ...], from_start: dict[int, int] | None = None,
            ) -> dict[str, Any]:
    """N viewers x 1,000 events/s, `plan` {viewers: repetitions}, each tree in turn, joining
    from the current seq (`?after=`), and `from_start` the same joining from seq 0 as the
    page does (`cases_start`); then the bare sender at the viewers' measured events/s and
    frame size."""
    out: dict[str, Any] = {"seconds": seconds, "cases": {t.name: {} for t in trees},
                           "cases_start": {t.name: {} for t in trees}}
    rounds = max(plan.values())
    with _servers(trees, server_args) as servers:
        for i in range(rounds):
            for n, repeats in plan.items():
                if i >= repeats:
                    continue
                for tree in trees:
                    case = fanout.case(servers[tree.name], n, seconds)
                    out["cases"][tree.name].setdefault(str(n), []).append(case)
                    print(f"  {tree.name:>6} {fanout.line(case)}", flush=True)
        for n, repeats in (from_start or {}).items():
            for _ in range(repeats):
                for tree in trees:
                    case = fanout.case(servers[tree.name], n, seconds, join="start")
                    out["cases_start"][tree.name].setdefault(str(n), []).append(case)
                    print(f"  {tree.name:>6} {fanout.line(case)}", flush=True)
    one = out["cases"][trees[-1].name]["1"][0]
    out["baseline"] = {}
    last = trees[-1].name
    for n in sorted(set(plan) | set(from_start or {})):
        if n == 1:
            continue
        # at this tree's (the last's) events/s, frame size and flush: the same bytes in the
        # same number of sends (a size only joined from seq 0: that case's)
        many = (out["cases"][last] if n in plan else out["cases_start"][last])[str(n)][0]
        out["baseline"][str(n)] = fanout.baseline(one, many, seconds)
        bn = out["baseline"][str(n)]["many"]
        print(f"  baseline {n} viewers: {out['baseline'][str(n)]['per_event_us']:.2f} µs "
              f"per delivered event, a send every {bn['flush_s'] * 1e3:.0f} ms (sender "
              f"{bn['sender_cores']:.2f} cores, viewers {bn['viewers_cores']:.2f})", flush=True)
    return out


class _servers:
    """One BenchServer per tree, all started, all stopped."""

    def __init__(self, trees: list[Tree], args: tuple[str, ...] = ()) -> None:
        self.servers = {t.name: BenchServer(*args, root=t.root) for t in trees}

    def __enter__(self) -> dict[str, BenchServer]:
        for s in self.servers.values():
            s.__enter__()
        return self.servers

    def __exit__(self, *exc: object) -> None:
        for s in self.servers.values():
            s.__exit__(None, None, None)


def run(trees: list[Tree], quick: bool, log: Callable[[str], None] = print
        ) -> dict[str, Any]:
    """Every row, each tree, interleaved."""
    results: dict[str, Any] = {"trees": {t.name: {"rev": t.rev, "root": str(t.root)}
                                         for t in trees}, "quick": quick}
    repeats = 2 if quick else 5
    gil = (GIL[0], {**GIL[1], "time_scale": 0.25 if quick else 1.0})
    started = time.monotonic()

    def log_(what: str) -> None:
        log(f"[{time.monotonic() - started:5.0f} s] {what}")

    with _servers(trees) as servers:
        log_("start-up: 100 forked processes")
        results["startup"] = _lesson("elapsed", STARTUP, trees, servers, repeats, watch=True)
        log_("ticket_rush n=100 lock off")
        results["ticket_rush"] = _lesson("elapsed", RUSH, trees, servers, repeats, watch=True)
        log_("gil processes")
        results["gil"] = _lesson("speedup", gil, trees, servers, 1 if quick else 3,
                                 watch=False)
        log_("throughput: 4 processes -> 1 SSE client")
        results["throughput"] = throughput(trees, servers, 1 if quick else 3,
                                           5_000 if quick else 25_000)
    log_("fan-out: N viewers x 1,000 events/s")
    plan = {1: 1, 100: 1} if quick else {1: 1, 200: 5, 500: 1, 1000: 1}
    from_start = {200: 1} if quick else {200: 3, 500: 1, 1000: 1}
    results["fanout"] = fan_out(trees, plan, 2.0 if quick else 5.0, ("--max-streams", "2000"),
                                from_start)
    return results


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")
