"""python -m bench.prims_cost [--runs N] [--loop N]: what instrumenting multiprocessing's
primitives costs a traced program (issue 26, item 4).

bench/prims_probe.py is run as a program, plainly and as `procscope trace --json-file`
(no server), one after the other, N times (interleaved: a slower stretch of a shared
machine falls on both); each figure is the median of its N runs, and each ratio the median
of the N pairs' ratios. CPU: the probe's own thread's CPU time (what the instrumentation
adds to the program's work; the wall time also holds what the machine gave others).

Goals: at most 2 µs added per operation (an acquire, a release, a put, a get) while the
events are sent; a loop of 1M uncontended acquire+release pairs at most 1.5x plain (past
the budget: counted, not sent).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.server import ROOT

PROBE = ROOT / "bench" / "prims_probe.py"
GOAL_ADDED_NS = 2000.0  # per operation
GOAL_LOOP_RATIO = 1.5


def _probe(traced: bool, loop: int, tmp: Path) -> dict[str, Any]:
    prefix = [sys.executable]
    if traced:
        prefix += ["-m", "procscope", "trace", "--json-file", str(tmp / "events.ndjson")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PROCSCOPE_RUNTIME_DIR"] = str(tmp / "runtime")  # empty: no server found
    done = subprocess.run([*prefix, str(PROBE), "--loop", str(loop)], capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL, env=env, check=True)
    got: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if traced:
        with open(tmp / "events.ndjson", "rb") as events:
            got["events"] = sum(1 for _ in events)
    return got


def run(quick: bool = False, runs: int | None = None, loop: int | None = None) -> dict[str, Any]:
    runs = runs or (2 if quick else 5)
    loop = loop or (200_000 if quick else 1_000_000)
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="prims-cost-") as tmp:
        (Path(tmp) / "runtime").mkdir(mode=0o700)
        for _ in range(runs):
            pairs.append((_probe(False, loop, Path(tmp)), _probe(True, loop, Path(tmp))))
    out: dict[str, Any] = {"runs": runs, "loop": loop,
                           "events": statistics.median(t["events"] for _, t in pairs)}
    for key in ("lock_pair_ns", "lock_pair_cpu_ns", "queue_pair_ns", "queue_pair_cpu_ns",
                "loop_s", "loop_cpu_s"):
        out[key] = {"plain": statistics.median(p[key] for p, _ in pairs),
                    "traced": statistics.median(t[key] for _, t in pairs),
                    "ratio": statistics.median(t[key] / p[key] for p, t in pairs)}
    return out


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(r: dict[str, Any]) -> str:
    lines = [f"## multiprocessing's primitives under procscope trace (median of {r['runs']} "
             "interleaved runs; ns per pair, CPU = the program's thread)",
             f"{'':<36} {'plain':>9} {'traced':>9} {'added/op':>9}  goal"]
    for key, label in (("lock_pair_ns", "Lock acquire+release, wall"),
                       ("lock_pair_cpu_ns", "Lock acquire+release, CPU"),
                       ("queue_pair_ns", "Queue put+get, wall"),
                       ("queue_pair_cpu_ns", "Queue put+get, CPU")):
        f = r[key]
        added = (f["traced"] - f["plain"]) / 2  # two operations a pair
        goal = f"<= 2 µs added/op: {_mark(added <= GOAL_ADDED_NS)}" if "CPU" in label else ""
        lines.append(f"{label:<36} {f['plain']:>9.0f} {f['traced']:>9.0f} {added:>9.0f}  {goal}")
    for key, label in (("loop_s", "wall"), ("loop_cpu_s", "CPU")):
        f = r[key]
        goal = (f"<= {GOAL_LOOP_RATIO}x: {_mark(f['ratio'] <= GOAL_LOOP_RATIO)}"
                if label == "CPU" else "")
        lines.append(f"{r['loop']:,} acquire+release pairs, {label} (s)".ljust(36)
                     + f" {f['plain']:>9.3f} {f['traced']:>9.3f} {f['ratio']:>8.2f}x  {goal}")
    lines.append(f"(events sent by a traced run: {r['events']:.0f}; past the budget's "
                 "burst the hot loop's acquisitions are counted: prims.tally)")
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.prims_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loop", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"python -m bench.prims_cost --runs {args.runs} --loop {args.loop}")
    print(report(run(runs=args.runs, loop=args.loop)))


if __name__ == "__main__":
    main()
