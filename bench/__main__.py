"""python -m bench [--quick] [--json PATH] [--before REV] [--profile]: every benchmark, each
figure beside its baseline measured in the same invocation.

First issue 17's table (bench.limits: start-up, lesson overhead, throughput, fan-out; with
--before REV the same figures for that commit, interleaved with this tree's), then the
other sections for this tree (skipped with --before and with --quick). --profile: profiles
of start-up, throughput and fan-out instead (bench.profiles, kept in bench-out/). Benchmarks print
numbers and never fail: the exit code is 0 even when a target is missed (the table says
so). --quick is the CI mode: issue 17's table with fewer repetitions and viewers (100, and 200
joining from seq 0), under a minute on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench import core_lanes, limits, limits_report, overhead, pipeline, prims_cost, sampler_cost
from bench.server import ROOT
from bench.trees import trees

TARGETS = {
    "throughput_ratio": 0.5,  # end-to-end events/s over the raw Pipe's, at least
    "p99_ms_200": 50.0,  # emit-to-client p99 with 200 clients at 1,000 events/s, at most
    "overhead_ratio": 1.05,  # lesson wall time under procscope over plain, at most
    "rss_mb": 100.0,  # server RSS with a 100,000-event run and 200 clients, at most
    "frame_ms_p95": 16.0,  # browser frame time on a 100,000-event run, at most
}


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(results: dict[str, Any]) -> str:
    lines = []
    p = results["pipeline"]
    raw = p["raw_pipe_eps"]
    lines.append("## Event pipeline throughput (4 processes -> ... -> SSE)")
    lines.append(f"{'path':<34} {'events/s':>10} {'vs raw pipe':>12}")
    lines.append(f"{'raw multiprocessing.Pipe, 1 reader':<34} {raw:>10,.0f} {'1.00':>12}")
    for key in sorted((k for k in p if k.startswith("e2e_eps_")), key=lambda k: int(k[8:])):
        clients = key.rsplit("_", 1)[1]
        ratio = p[key] / raw
        mark = f" target >= {TARGETS['throughput_ratio']}: {_mark(ratio >= 0.5)}" \
            if clients == "1" else ""
        lines.append(f"{'procscope, ' + clients + ' SSE client(s)':<34} {p[key]:>10,.0f} "
                     f"{ratio:>12.2f}{mark}")
    if "db" in p:
        d = p["db"]
        lines.append(f"{'procscope --db FILE, 1 SSE client':<34} {d['e2e_eps']:>10,.0f} "
                     f"{d['e2e_eps'] / raw:>12.2f}")
        lines.append(f"{'... onto the disk (last commit)':<34} {d['written_eps']:>10,.0f} "
                     f"{d['written_eps'] / raw:>12.2f}  "
                     f"{d['mb_per_100k_events']:.1f} MB per 100k events")
    lines.append("")
    lines.append("## Emit-to-client latency (ms)")
    lines.append(f"{'case':<38} {'p50':>7} {'p95':>7} {'p99':>7} {'events':>7}")
    if p.get("burst"):
        b = p["burst"]
        lines.append(f"{'ticket_rush n=100 start burst, 1 client':<38} {b['p50']:>7.1f} "
                     f"{b['p95']:>7.1f} {b['p99']:>7.1f} {b['n']:>7}")
    for key in sorted((k for k in p if k.startswith("steady_")), key=lambda k: int(k[7:])):
        s = p[key]
        clients = key[7:]
        mark = ""
        if clients == "200":
            mark = f"  target p99 <= 50: {_mark(s['p99'] <= TARGETS['p99_ms_200'])}"
        lines.append(f"{'1,000 events/s, ' + clients + ' client(s)':<38} {s['p50']:>7.1f} "
                     f"{s['p95']:>7.1f} {s['p99']:>7.1f} {s['n']:>7}{mark}")
    lines.append("")
    lines.append("## Server memory (RSS, MB)")
    lines.append(f"idle: {p['rss_idle_mb']:.1f}")
    lines.append(f"holding one {p['held_events']:,}-event run: {p['rss_100k_mb']:.1f}")
    rss = p["rss_100k_200_clients_mb"]
    lines.append(f"... and streaming 1,000 events/s to 200 clients (peak): {rss:.1f}  "
                 f"target <= 100: {_mark(rss <= TARGETS['rss_mb'])}")
    o = results["overhead"]
    lines.append("")
    lines.append("## Overhead on the lesson (wall time, s; same code without procscope)")
    lines.append(f"{'lesson':<44} {'plain':>7} {'procscope':>10} {'ratio':>6}")
    for row in o["lessons"]:
        args = ",".join(f"{k}={v}" for k, v in row["params"].items())
        extra = ""
        if "speedup_plain" in row:
            extra = f"  speedup {row['speedup_plain']:.2f} -> {row['speedup_procscope']:.2f}"
        lines.append(f"{row['experiment'] + ' ' + args:<44.44} {row['plain_s']:>7.3f} "
                     f"{row['procscope_s']:>10.3f} {row['ratio']:>6.2f}"
                     f" {_mark(row['ratio'] <= TARGETS['overhead_ratio'])}{extra}")
    e = o["emit"]
    lines.append(f"one emit() in a child: {e['emit_us']:.1f} µs "
                 f"(of which sched_getcpu: {e['sched_getcpu_us']:.2f} µs)")
    lines.append("")
    lines.append("## Start-up: start and join N processes (s)")
    lines.append(f"{'start method':<12} {'N':>4} {'plain':>8} {'procscope':>10} {'ratio':>6}")
    for row in o["startup"]:
        lines.append(f"{row['start_method']:<12} {row['processes']:>4} {row['plain_s']:>8.2f} "
                     f"{row['procscope_s']:>10.2f} {row['procscope_s'] / row['plain_s']:>6.2f}")
    lines.append("")
    lines.append("## Kernel sampler cost (budget 1.00 = unbounded)")
    lines.append(f"{'processes':>9} {'rate Hz':>8} {'budget':>7} {'achieved':>9} {'CPU s/s':>8} "
                 f"{'µs/pass':>8} {'resolution ms':>14}")
    for row in results["sampler"]:
        lines.append(f"{row['processes']:>9.0f} {row['hz']:>8.0f} {row['budget']:>7.2f} "
                     f"{row['achieved_hz']:>9.1f} {row['cpu_per_s']:>8.3f} "
                     f"{row['us_per_pass']:>8.0f} {1e3 / row['achieved_hz']:>14.1f}")
    if "browser" in results:
        br = results["browser"]
        lines.append("")
        lines.append(f"## Browser: headless Chromium, 1280x720, a {br['events']:,}-event run (ms)")
        lines.append(f"{'':<36} {'p50':>6} {'p95':>6} {'max':>6}")
        for key, label in (("live_draw_ms", "draw per frame, live"),
                           ("zoomed_out_replay_draw_ms", "draw per frame, zoomed out, 4x"),
                           ("raf_interval_ms", "frame interval (rAF), replaying")):
            s = br[key]
            mark = ""
            if key != "raf_interval_ms":
                mark = f"  target p95 <= 16: {_mark(s['p95'] <= TARGETS['frame_ms_p95'])}"
            lines.append(f"{label:<36} {s['p50']:>6.1f} {s['p95']:>6.1f} "
                         f"{s.get('max', s['p95']):>6.1f}{mark}")
        if "watch_cost" in br:
            from bench import browser

            lines += ["", browser.watch_report(br["watch_cost"])]
    lines += ["", core_lanes.report(results["core_lanes"])]
    lines += ["", prims_cost.report(results["prims"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI mode: small, about 2 minutes")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--before", metavar="REV",
                        help="also measure this commit (a temporary git worktree), "
                             "interleaved with this tree")
    parser.add_argument("--profile", action="store_true",
                        help="profile start-up, throughput and fan-out (perf, py-spy) into "
                             "bench-out/")
    args = parser.parse_args()
    started = time.monotonic()
    if args.profile:
        from bench import profiles

        print(profiles.run(ROOT / "bench-out", quick=args.quick))
        return
    results: dict[str, Any] = {}
    with trees(args.before) as compared:
        results["limits"] = limits.run(compared, quick=args.quick)
    print("\n## Issue 17: close to the limit\n")
    print(limits_report.table(results["limits"]))
    print()
    print(limits_report.fanout_detail(results["limits"]))
    if args.quick:
        print("\n(--quick: issue 17's table only; the other sections run without it)")
    elif args.before is None:
        results.update({
            "pipeline": pipeline.run(quick=args.quick),
            "overhead": overhead.run(quick=args.quick),
            "sampler": sampler_cost.run(quick=args.quick),
            "core_lanes": core_lanes.run(quick=args.quick),
            "prims": prims_cost.run(quick=args.quick),
        })
        try:
            from bench import browser
        except ImportError:
            pass
        else:
            results["browser"] = browser.run(quick=args.quick)
        print()
        print(report(results))
    else:
        print("\n(the other sections measure this tree alone: run without --before)")
    results["seconds"] = time.monotonic() - started
    print(f"\n(took {results['seconds']:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
