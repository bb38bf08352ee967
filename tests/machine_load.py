"""How crowded the machine's cores were, for tests that bound a wall-clock time.

Runs in pytest. A bound such as "a cancel ends every process of the run within 3 s" is the
server's to keep on free cores. On a shared machine the path being timed competes for the
cores with everything else runnable: with R tasks runnable on N cores (R > N), a task gets
about N / R of a core, and its steps take R / N times as long. So a test holds
`bound * max(1, R / N) + steal` over the window it times, R the mean of the kernel's count
of runnable tasks (/proc/stat `procs_running`, the sampler itself left out) and steal the
time the hypervisor ran another guest (/proc/stat): with no more tasks runnable than cores,
the bound itself, and never less.

`LoadMeter` samples both every SAMPLE_S while it is open, so that a window inside a run (from
its events' `t`, through the run's `t0_monotonic_ns`) is charged only the load around it.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pytest
from machine import steal_s

SAMPLE_S = 0.02
CORES = os.cpu_count() or 1


def runnable() -> int:
    """Tasks runnable on the machine now, the caller left out (/proc/stat procs_running)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("procs_running "):
                return max(0, int(line.split()[1]) - 1)
    raise RuntimeError("/proc/stat has no procs_running line")


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    runnable: int
    steal: float  # steal_s() then


@dataclass(frozen=True)
class Window:
    """What the machine's load was over a window of wall time."""

    seconds: float
    crowding: float  # max(1, mean runnable tasks / cores)
    steal: float  # seconds

    def held(self, bound: float) -> float:
        """`bound` (s, for free cores) as held on this window's machine."""
        return bound * self.crowding + self.steal

    def assert_within(self, bound: float, what: str, took: float | None = None) -> None:
        """`took` (default: the window's length) is within `bound` as held."""
        took = self.seconds if took is None else took
        assert took <= self.held(bound), (
            f"{what}: {took:.2f} s, over {bound} s held to {self.held(bound):.2f} s "
            f"(cores crowded x{self.crowding:.2f}, steal {self.steal:.2f} s)")


class LoadMeter:
    """The machine's load, sampled from `with LoadMeter() as load:` to the block's end.

    Invariant: samples are in time order, the first taken on entry; a window is charged
    the samples taken in it and the nearest one on either side (never none).
    """

    def __init__(self) -> None:
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, name="load-meter",
                                        daemon=True)

    def __enter__(self) -> LoadMeter:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        sample = Sample(time.monotonic(), runnable(), steal_s())
        with self._lock:
            self._samples.append(sample)

    def _sample_loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def window(self, t0: float, t1: float | None = None) -> Window:
        """The load from monotonic `t0` to `t1` (default: now)."""
        if not self._stop.is_set():
            self._sample()  # a sample at or after any t1 up to now
        end = time.monotonic() if t1 is None else t1
        with self._lock:
            samples = list(self._samples)
        ats = [s.at for s in samples]
        first = max(0, bisect.bisect_right(ats, t0) - 1)
        last = min(bisect.bisect_left(ats, end), len(samples) - 1)
        inside = samples[first:last + 1]
        mean = sum(s.runnable for s in inside) / len(inside)
        return Window(end - t0, max(1.0, mean / CORES),
                      max(0.0, samples[last].steal - samples[first].steal))

    def since(self, t0: float) -> Window:
        return self.window(t0)

    def wait_for(self, condition: Callable[[], bool], bound: float,
                 describe: Callable[[], str] = lambda: "") -> float:
        """Poll `condition` until it holds, for at most `bound` s as held on the load
        meanwhile; the seconds it took."""
        t0 = time.monotonic()
        while not condition():
            window = self.since(t0)
            assert window.seconds <= window.held(bound), (
                f"timed out waiting {describe()}: {window.seconds:.2f} s, over {bound} s held "
                f"to {window.held(bound):.2f} s (cores crowded x{window.crowding:.2f})")
            time.sleep(0.02)
        return time.monotonic() - t0


@pytest.fixture(scope="module")
def load() -> Iterator[LoadMeter]:
    """The machine's load, sampled for a whole test module (import the fixture by name)."""
    with LoadMeter() as meter:
        yield meter


def run_clock(events: list[dict[str, Any]]) -> float:
    """The monotonic time of a run's t = 0, from its run.start event (its events' `t` are
    seconds since then)."""
    start = events[0]
    assert start["kind"] == "run.start", start
    return float(start["data"]["t0_monotonic_ns"]) / 1e9
