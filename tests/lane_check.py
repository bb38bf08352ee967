"""The core lanes a run's stream drew (`cpu.run`) next to the kernel's record of the same
run (tests/kernel_trace.py): what tests/test_core_lanes.py asserts and bench/core_lanes.py
tabulates, shared so that both read the stream and the reference the same way.

Runs in the test or bench process, after the run: `Drawn` stretches are CLOCK_MONOTONIC
ns (the run's `t0_monotonic_ns` plus each event's seconds), like the kernel's spans.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kernel_trace import Drawn, KernelTrace, Span

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process so far (/proc/<pid>/stat), s."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def drawn_stretches(events: list[dict[str, Any]], t0_ns: int, pid: int,
                    tid: int | None = None) -> list[Drawn]:
    """The stretches the stream drew for a process (all its threads), or one thread."""
    return [(t0_ns + round(e["data"]["t0"] * 1e9), t0_ns + round(e["data"]["t1"] * 1e9),
             float(e["data"].get("share", 1.0)))
            for e in events if e["kind"] == "cpu.run" and e["pid"] == pid
            and (tid is None or e["data"]["tid"] == tid)]


def drawn_total(spans: Iterable[Drawn]) -> float:
    """ns drawn on a core: each stretch's length times its share."""
    return sum((t1 - t0) * share for t0, t1, share in spans)


@dataclass
class GilWorker:
    """One gil worker as drawn and as the kernel had it."""

    name: str
    event: dict[str, Any]  # its task.start
    drawn: list[Drawn]
    kernel: list[Span]
    own_cpu: float  # the worker's own clock (its task.end's cpu), s


def gil_workers(kt: KernelTrace, events: list[dict[str, Any]], t0_ns: int, main_pid: int,
                mode: str) -> list[GilWorker]:
    """Each gil worker's stretches on both sides, in task.start order: a thread of the main
    by its tid, a process with all its threads."""
    ends = {e["data"]["worker"]: e["data"]["cpu"] for e in events if e["kind"] == "task.end"}
    workers = []
    for e in events:
        if e["kind"] != "task.start":
            continue
        name = e["data"]["worker"]
        if mode == "threads":
            drawn = drawn_stretches(events, t0_ns, main_pid, e["tid"])
            kernel = kt.on_cpu_spans([e["tid"]])
        else:
            drawn = drawn_stretches(events, t0_ns, e["pid"])
            kernel = kt.on_cpu_spans(kt.tree(e["pid"]))
        workers.append(GilWorker(name, e, drawn, kernel, ends[name]))
    return workers
