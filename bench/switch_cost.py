"""What the context-switch recorder costs: its CPU per second of wall time while recording.

Runs in the bench process: starts a workload as a real child Python that waits on a gate,
opens an `app.kernel.switches.SwitchRecorder` on it, opens the gate and drains the rings at a
fixed rate (the sampler's, 100 Hz, by default) until the workload ends. The recorder's
cost is the CPU time of the drains (`time.thread_time()` around each call); the kernel's
side (writing the 32-byte records in the switch path) is charged to the workload, so the
workload's wall time is also measured without a recorder, in the same invocation.

Each workload is recorded twice: with per-task events only (what an unprivileged user
gets), and with the CPU-wide events too (the exit tails, where allowed), whose rings hold
every switch on the machine: read in full while an exited task of the run is followed.
So their cost grows with the machine's switch rate, shown as "machine sw/s"; `--noise`
adds two processes outside the run that ping-pong a byte over pipes (tens of thousands
of switches a second) to see it at a busy machine's rate.

    python -m bench.switch_cost [--drain-hz 100] [--noise]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Any

from procscope.kernel.switches import SwitchRecorder, availability

PING_PONG = """
import os
a_r, a_w = os.pipe()
b_r, b_w = os.pipe()
if os.fork() == 0:
    while os.read(a_r, 1):
        os.write(b_w, b"x")
    os._exit(0)
while True:
    os.write(a_w, b"x")
    os.read(b_r, 1)
"""

GIL_THREADS = """
import os, sys, threading, time
os.read(int(sys.argv[1]), 1)
def burn():
    end = time.thread_time() + 1.0
    while time.thread_time() < end:
        for _ in range(2000):
            pass
threads = [threading.Thread(target=burn) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

# Like the ticket_rush lesson with its Lock: 100 forked buyers, each reads a JSON file,
# thinks 2 ms, writes it back, under a multiprocessing Lock.
TICKET_RUSH = """
import json, os, sys, tempfile, time
import multiprocessing as mp
os.read(int(sys.argv[1]), 1)
def buyer(lock, db):
    with lock:
        with open(db) as f:
            dic = json.load(f)
        time.sleep(0.002)
        dic["count"] = max(0, dic["count"] - 1)
        with open(db, "w") as f:
            json.dump(dic, f)
ctx = mp.get_context("fork")
with tempfile.TemporaryDirectory() as d:
    db = os.path.join(d, "db.txt")
    with open(db, "w") as f:
        json.dump({"count": 1}, f)
    lock = ctx.Lock()
    buyers = [ctx.Process(target=buyer, args=(lock, db)) for _ in range(100)]
    for p in buyers:
        p.start()
    for p in buyers:
        p.join()
"""

WORKLOADS = {"2 GIL threads, 1 CPU-s each": GIL_THREADS,
             "100 processes (ticket_rush, Lock)": TICKET_RUSH}


def _start(code: str) -> tuple[subprocess.Popen[bytes], int]:
    gate_r, gate_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", code, str(gate_r)], pass_fds=(gate_r,),
                            start_new_session=True)
    os.close(gate_r)
    return proc, gate_w


def plain_wall(code: str) -> float:
    """The workload's wall time, from the gate to its exit, with nobody recording."""
    proc, gate = _start(code)
    time.sleep(0.3)  # let the interpreter start, as the recorded run does while opening
    t0 = time.monotonic()
    os.write(gate, b"x")
    proc.wait()
    os.close(gate)
    return time.monotonic() - t0


def context_switches() -> int:
    """Context switches on the whole machine since boot (/proc/stat ctxt)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                return int(line.split()[1])
    return 0


def recorded(code: str, drain_hz: float, cpu_wide: bool) -> dict[str, Any]:
    proc, gate = _start(code)
    recorder = SwitchRecorder(cpu_wide=None if cpu_wide else False)
    try:
        c0 = time.thread_time()
        recorder.open(proc.pid)
        open_ms = (time.thread_time() - c0) * 1e3
        time.sleep(0.3)
        spans = 0
        cpu = 0.0
        t0, ctxt0 = time.monotonic(), context_switches()
        os.write(gate, b"x")
        while True:
            done = proc.poll() is not None
            c0 = time.thread_time()
            spans += len(recorder.drain())
            cpu += time.thread_time() - c0
            if done:
                break
            time.sleep(1 / drain_hz)
        wall = time.monotonic() - t0
        return {"wall_s": wall, "cpu_per_s": cpu / wall, "cpu_ms": cpu * 1e3,
                "open_ms": open_ms, "spans": spans, "tails": recorder.tail_spans,
                "lost": recorder.lost, "broken": recorder.broken,
                "us_per_span": cpu / max(spans, 1) * 1e6,
                "machine_sw_s": (context_switches() - ctxt0) / wall,
                "events": "CPU-wide too" if recorder.exit_tails else "per-task"}
    finally:
        recorder.close()
        os.close(gate)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drain-hz", type=float, default=100.0)
    parser.add_argument("--noise", action="store_true",
                        help="two processes outside the run switching all the time")
    args = parser.parse_args()
    ok, reason = availability()
    print(reason)
    if not ok:
        return
    noise = (subprocess.Popen([sys.executable, "-c", PING_PONG], start_new_session=True)
             if args.noise else None)
    try:
        table(args.drain_hz)
    finally:
        if noise is not None:
            os.killpg(noise.pid, signal.SIGKILL)
            noise.wait()


def table(drain_hz: float) -> None:
    print(f"drained at {drain_hz:g} Hz; load average {os.getloadavg()[0]:.2f}\n")
    head = (f"| {'workload':<34} | {'events':<12} | CPU s/s | CPU ms | open ms | spans "
            f"| tails | lost | broken | µs/span | machine sw/s | wall s, plain / recorded |")
    print(head)
    print("|" + "|".join("-" * (len(c) or 1) for c in head.split("|")[1:-1]) + "|")
    for name, code in WORKLOADS.items():
        plain = plain_wall(code)
        for cpu_wide in (False, True):
            r = recorded(code, drain_hz, cpu_wide)
            walls = f"{plain:.3f} / {r['wall_s']:.3f}"
            print(f"| {name:<34} | {r['events']:<12} | {r['cpu_per_s']:7.4f} "
                  f"| {r['cpu_ms']:6.1f} | {r['open_ms']:7.2f} | {r['spans']:5d} "
                  f"| {r['tails']:5d} | {r['lost']:4d} | {r['broken']:6d} "
                  f"| {r['us_per_span']:7.1f} | {r['machine_sw_s']:12.0f} | {walls:<24} |")


if __name__ == "__main__":
    main()
