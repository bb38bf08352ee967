"""What the kernel sampler costs: CPU per second of sampling, with N live processes.

Runs in the bench process: starts N sleeping processes in a session of their own, lets a
real Sampler (feeding a real Relay) watch them for a few seconds at each rate, and reads the
sampler thread's own CPU time from /proc/self/task/<tid>/stat.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from procscope.kernel import procgroup
from procscope.kernel.sampler import CLOCK_TICKS, Sampler
from procscope.pipe.relay import Relay


def _thread_cpu(tid: int) -> float:
    stat = procgroup.read_stat(f"/proc/self/task/{tid}/stat")
    assert stat is not None
    return (stat.utime + stat.stime) / CLOCK_TICKS


def measure(n: int, hz: float, seconds: float, budget: float = 1.0) -> dict[str, float]:
    leader = subprocess.Popen(
        [sys.executable, "-c",
         "import os, time\n"
         f"for _ in range({n - 1}):\n"
         "    if os.fork() == 0:\n"
         "        break\n"
         "time.sleep(600)\n"],
        start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(procgroup.members(leader.pid)) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered = [0]
        relay = Relay(lambda run, events: delivered.__setitem__(0, delivered[0] + len(events)),
                      lambda run: None)
        relay.start()
        read_fd, write_fd = os.pipe()  # a run pipe that stays open while we measure
        relay.add("bench", read_fd, time.monotonic_ns(), {})
        sampler = Sampler(relay, hz, budget)
        sampler.watch("bench", leader.pid, time.monotonic_ns())  # sampled: no recorder
        sampler.start()
        assert sampler._thread is not None and sampler._thread.native_id is not None
        tid = sampler._thread.native_id
        time.sleep(1.0)  # warm-up: discovery of the n processes
        cpu0, samples0, t0 = _thread_cpu(tid), sampler.samples, time.monotonic()
        time.sleep(seconds)
        cpu1, samples1, t1 = _thread_cpu(tid), sampler.samples, time.monotonic()
        sampler.stop()
        relay.stop()
        os.close(write_fd)
        rate = (samples1 - samples0) / (t1 - t0)
        return {"processes": len(procgroup.members(leader.pid)), "hz": hz, "budget": budget,
                "achieved_hz": rate, "cpu_per_s": (cpu1 - cpu0) / (t1 - t0),
                "us_per_pass": 1e6 * (cpu1 - cpu0) / max(1, samples1 - samples0)}
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


def run(quick: bool = False) -> list[dict[str, float]]:
    seconds = 1.0 if quick else 5.0
    rows = [measure(100, hz, seconds) for hz in (100, 1000)]  # unbounded: what it costs
    # The server's defaults (up to 2 kHz within 0.15 of a core), few processes and many.
    rows.append(measure(3, 2000, seconds, budget=0.15))
    rows.append(measure(100, 2000, seconds, budget=0.15))
    if not quick:
        rows.append(measure(500, 2000, seconds, budget=0.15))
    return rows


if __name__ == "__main__":
    print(f"{'procs':>5} {'hz':>6} {'budget':>6} {'achieved':>9} {'cpu/s':>7} {'us/pass':>8}")
    for row in run():
        print(f"{row['processes']:5.0f} {row['hz']:6.0f} {row['budget']:6.2f} "
              f"{row['achieved_hz']:9.1f} "
              f"{row['cpu_per_s']:7.3f} {row['us_per_pass']:8.0f}")
