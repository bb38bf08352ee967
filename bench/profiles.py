"""Profiles of start-up and fan-out (`python -m bench --profile`), kept in bench-out/ (not
in the repository), with the top functions by self and total samples printed as tables.

Runs in the bench process, as root (perf and py-spy attach to other processes).

The sampling profilers: perf's cpu-clock (a VM has no hardware counters: samples pile up
where interrupts are re-enabled, `finish_task_switch` and `_raw_spin_unlock_irqrestore`,
so read those as "in the kernel around a switch or a wake-up"), py-spy 0.4.3 (the
`test` extra).

- start-up: one server of this tree; `perf record -g -p SERVER` (cpu-clock at 999 Hz; the
  event is inherited, so it also samples every run the server spawns and every process a
  run forks: kernel stacks are whole, the interpreter's are one frame deep, as this
  CPython has no frame pointers) and `py-spy record --subprocesses` (Python frames of the
  server's threads and of each run's main; a forked worker lives a few ms, shorter than
  py-spy's scan for new children) while RUNS runs of `flood` start and join 100 forked
  processes each, under procscope as bench.limits measures it.
- throughput: one server of this tree, RUNS_FLOOD floods of 4 x 25,000 events to one SSE
  viewer as bench.limits measures them (its `_Watcher`), `py-spy record --threads` of the
  server (each thread's Python frames apart: the relay, the event loop, the sampler) and
  every thread's CPU from /proc/PID/task/TID/schedstat, plus the emitting processes' own
  CPU (their proc.exit `cpu_time`), each as µs per event: CPU seconds are what a loaded
  machine does not change, and on 2 cores the flood is as fast as its CPU per event lets.
- fan-out: a server with 500 viewers of a 1,000 events/s run (bench.fanout), profiled over
  the steady window: py-spy of the server (no children: the run's processes are not the
  fan-out) and perf of the server process.

Files: startup.perf.data, startup.pyspy.txt (py-spy's raw collapsed stacks, which
speedscope and flamegraph.pl read), throughput.pyspy.txt, fanout.*; the tables in
profiles.txt.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench import fanout, pipeline
from bench.limits import STARTUP, _run, flood_watched
from bench.server import BenchServer

RUNS = 10  # start-ups profiled: ~1,000 processes' worth of samples
RUNS_FLOOD = 3  # floods of 4 x 25,000 events profiled
TOP = 15


def _top(stacks: collections.Counter[tuple[str, ...]], top: int = TOP) -> str:
    """Self and total samples per function, the `top` of each, from collapsed stacks."""
    total = sum(stacks.values())
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for stack, n in stacks.items():
        if not stack:
            continue
        own[stack[-1]] += n
        for frame in set(stack):
            inclusive[frame] += n
    lines = [f"{total} samples", f"{'self %':>7}  {'function (self)':<62} {'total %':>7}  "
             "function (total)"]
    by_self, by_total = own.most_common(top), inclusive.most_common(top)
    for i in range(top):
        left = (f"{100 * by_self[i][1] / total:>7.1f}  {by_self[i][0][:62]:<62}"
                if i < len(by_self) else " " * 72)
        right = (f"{100 * by_total[i][1] / total:>7.1f}  {by_total[i][0][:70]}"
                 if i < len(by_total) else "")
        lines.append(f"{left} {right}")
    return "\n".join(lines)


def read_pyspy(path: Path, drop_processes: bool = True) -> collections.Counter[tuple[str, ...]]:
    """py-spy's raw format: `frame;frame;...;leaf COUNT` per line, root first."""
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";")
                  if not (drop_processes and f.startswith("process "))]
        stacks[tuple(frames)] += int(count)
    return stacks


def read_perf(data: Path) -> collections.Counter[tuple[str, ...]]:
    """`perf script` of a -g recording as collapsed stacks (root first), the symbol with
    its object when perf cannot name it."""
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,dso"],
                         capture_output=True, text=True, check=False).stdout
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    frames: list[str] = []
    for line in out.splitlines() + [""]:
        line = line.strip()
        if not line:
            if frames:
                stacks[tuple(reversed(frames))] += 1
            frames = []
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        sym, _, dso = parts[1].rpartition(" (")
        sym = sym.split("+0x", 1)[0]
        if sym in ("[unknown]", ""):
            sym = f"[unknown in {Path(dso.rstrip(')')).name}]"
        frames.append(sym)
    return stacks


def _perf(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-p",
                             str(pid), "-o", str(out), "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pyspy(pid: int, out: Path, seconds: float, children: bool, threads: bool = False
           ) -> subprocess.Popen[bytes]:
    # --gil: only the thread holding the GIL, so a thread waiting (a queue, a Condition,
    # the event loop's epoll, which uvloop waits in without the GIL) is not counted as
    # busy; --nonblocking: never stop the process to read it (perf runs at the same time
    # and would see the ptrace stops).
    args = ["py-spy", "record", "-p", str(pid), "--nolineno", "-r", "250", "-d",
            str(int(seconds) + 1), "--format", "raw", "-o", str(out), "--gil",
            "--nonblocking"]
    if children:
        args.append("--subprocesses")
    if threads:
        args.append("--threads")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(procs: list[subprocess.Popen[bytes]], limit: float) -> None:
    for p in procs:
        try:
            p.wait(limit)
        except subprocess.TimeoutExpired:
            p.terminate()
            p.wait(10)


def startup(out: Path, runs: int) -> dict[str, Any]:
    seconds = 2.0 + runs * 2.0  # a run takes 0.3-2 s on this machine, loaded or not
    with BenchServer() as server:
        tools = [_perf(server.proc.pid, out / "startup.perf.data", seconds)]
        if shutil.which("py-spy"):
            tools.append(_pyspy(server.proc.pid, out / "startup.pyspy.txt", seconds, True))
        time.sleep(1.0)  # both attached
        elapsed = []
        started = time.monotonic()
        for _ in range(runs):
            if time.monotonic() - started > seconds - 1.0:
                break
            final, _w = _run(server, *STARTUP, watch=True)
            elapsed.append(final["result"]["elapsed"])
        _wait(tools, seconds + 30)
    return {"runs": len(elapsed), "elapsed": elapsed}


def _thread_cpu(pid: int) -> dict[int, int]:
    """CPU ns of each thread of `pid` so far (schedstat's first field)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0])
        except OSError:
            continue
    return out


def _emitters_cpu(server: BenchServer, run_id: str) -> float:
    """CPU seconds of a flood's emitting processes, from their own proc.exit."""
    total = 0.0
    with httpx.stream("GET", f"{server.url}/api/runs/{run_id}/events.ndjson") as response:
        for line in response.iter_lines():
            if '"proc.exit"' in line:
                event = json.loads(line)
                if str(event.get("proc") or "").startswith("worker-"):
                    total += event["data"].get("cpu_time") or 0.0
    return total


def throughput(out: Path, runs: int, per_process: int) -> dict[str, Any]:
    """Floods as bench.limits times them, the server profiled by thread."""
    path = out / "throughput.pyspy.txt"
    with BenchServer() as server:
        pid = server.proc.pid
        spy = (_pyspy(pid, path, 10.0 + runs * 10.0, False, threads=True)
               if shutil.which("py-spy") else None)
        time.sleep(1.0)  # attached
        eps, emitters = [], 0.0
        used: collections.Counter[int] = collections.Counter()
        for _ in range(runs):
            before = _thread_cpu(pid)
            run_id, watcher = flood_watched(server, per_process)
            # the flood's CPU only: not the reads of its log that follow (py-spy sees those)
            used.update({tid: ns - before.get(tid, 0) for tid, ns in _thread_cpu(pid).items()})
            first = pipeline._first_emit(server, run_id, "bench.tick")
            eps.append(4 * per_process / (watcher.last_tick - first))
            emitters += _emitters_cpu(server, run_id)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            _wait([spy], 30)
    events = runs * 4 * per_process
    names: dict[int, str] = {}
    stacks = read_pyspy(path) if path.exists() else collections.Counter()
    for stack in stacks:
        if stack and stack[0].startswith("thread ("):
            tid, _, name = stack[0][len("thread ("):].partition("): ")
            names[int(tid, 0)] = name
    per_thread = {names.get(tid, f"tid {tid}"): ns / events / 1e3
                  for tid, ns in used.items() if ns > 0}
    return {"runs": runs, "events": events, "eps": eps,
            "emitters_us": emitters / events * 1e6,
            "server_us": dict(sorted(per_thread.items(), key=lambda kv: -kv[1])),
            "raw_pipe_eps": pipeline.raw_pipe(4, per_process)}


def _by_thread(stacks: collections.Counter[tuple[str, ...]], top: int
               ) -> list[tuple[str, collections.Counter[tuple[str, ...]]]]:
    """The busiest `top` threads' stacks, each without its thread frame."""
    threads: collections.Counter[str] = collections.Counter()
    for stack, n in stacks.items():
        if stack:
            threads[stack[0]] += n
    return [(name, collections.Counter({s[1:]: n for s, n in stacks.items()
                                        if s and s[0] == name}))
            for name, _ in threads.most_common(top)]


def fan_out(out: Path, n: int, seconds: float) -> dict[str, Any]:
    with BenchServer("--max-streams", "2000") as server:
        pid = server.proc.pid
        # Attach once the viewers are connected: bench.fanout.case waits `settle` s after
        # they are, so the tools start with the window, give or take the connect time.
        holder: list[subprocess.Popen[bytes]] = []

        def attach() -> None:
            holder.append(_perf(pid, out / "fanout.perf.data", seconds))
            if shutil.which("py-spy"):
                holder.append(_pyspy(pid, out / "fanout.pyspy.txt", seconds, False))

        case = fanout.case(server, n, seconds, on_window=attach)
        _wait(holder, seconds + 30)
    return {"case": case}


def run(out: Path, quick: bool = False) -> str:
    out.mkdir(exist_ok=True)
    if not shutil.which("py-spy"):
        print("py-spy not found (pip install -e '.[test]'): Python frames are left out")
    s = startup(out, 3 if quick else RUNS)
    t = throughput(out, 1 if quick else RUNS_FLOOD, 5_000 if quick else 25_000)
    f = fan_out(out, 100 if quick else 500, 3.0 if quick else 5.0)
    parts = [f"## Start-up: {s['runs']} runs of 100 forked processes under procscope "
             f"(elapsed {', '.join(f'{x:.3f}' for x in s['elapsed'])} s while profiled)"]
    for name, reader in (("startup.pyspy.txt", read_pyspy), ("startup.perf.data", read_perf)):
        path = out / name
        if path.exists():
            what = "py-spy: Python frames" if "pyspy" in name else "perf: kernel and C"
            parts += ["", f"### {name} ({what})", _top(reader(path))]
    parts += ["", f"## Throughput: {t['runs']} flood{'s' if t['runs'] != 1 else ''} of 4 "
              "processes -> 1 SSE viewer "
              f"({', '.join(f'{x:,.0f}' for x in t['eps'])} events/s while profiled; a raw "
              f"Pipe after them {t['raw_pipe_eps']:,.0f}), CPU µs per event",
              f"{'emitting processes (their own cpu_time)':<44} {t['emitters_us']:>6.2f}"]
    parts += [f"{'server thread ' + name:<44} {us:>6.2f}"
              for name, us in t["server_us"].items() if us >= 0.01]
    path = out / "throughput.pyspy.txt"
    if path.exists():
        for name, stacks in _by_thread(read_pyspy(path), 3):
            parts += ["", f"### throughput.pyspy.txt, {name}", _top(stacks)]
    parts += ["", f"## Fan-out: the server at {f['case']['viewers']} viewers x 1,000 events/s "
              f"({fanout.line(f['case'])})"]
    for name, reader in (("fanout.pyspy.txt", read_pyspy), ("fanout.perf.data", read_perf)):
        path = out / name
        if path.exists():
            parts += ["", f"### {name}", _top(reader(path))]
    text = "\n".join(parts)
    (out / "profiles.txt").write_text(text + "\n")
    return text + f"\n\n(profiles in {out}/: *.perf.data for perf report -i, *.pyspy.txt " \
                  "for speedscope; these tables in profiles.txt)"

