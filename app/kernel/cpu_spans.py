"""Stretches on a core, as the stream carries them: `cpu.run` events.

Runs in the server, in the sampler's thread. Two sources make the same event:

- exact: app.kernel.switches reads the kernel's context-switch records; each stretch between a
  switch-in and its switch-out is one `cpu.run` with `preempted`. Stretches of one thread
  on one core less than MERGE_GAP_NS apart are one event (with the `share` of it really
  on the core, and `n` stretches): a thread waiting for the GIL wakes every 5 ms for a few
  µs, and a busy machine cuts a running thread into pieces; unmerged, the GIL lesson made
  ~3,000 events a second of sub-millisecond slivers no screen can show, while the totals
  (share x length) stay exact to the ns;
- sampled (the fallback where perf events are refused): each pass of the sampler reads
  every thread's run time from /proc/<pid>/task/<tid>/schedstat; a period in which a thread
  ran a share of the time becomes a stretch with that `share` (0-1), drawn as that share.
  Consecutive periods on the same core with about the same share are merged into one
  stretch (their share weighted by time), so that a lesson sampled at 2 kHz makes events
  only when something changes, and the total run time is kept exactly.

`data.t0` / `data.t1` are seconds since the run started, like an event's `t`; the event's
own `t` is its t1 (when the stretch was known to have ended).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from procscope.kernel.switches import Running, Span
from procscope.pipe.events import server_event

MERGE_GAP_NS = 100_000  # exact stretches closer than this (0.1 ms) are one event
MERGE_SHARE = 0.15  # two periods whose shares differ by less are one stretch
MIN_SHARE = 0.02  # below this a period is idle (timer noise, a wake-up to go back to sleep)


@dataclass
class _Exact:
    pid: int
    tid: int
    cpu: int
    t0_ns: int
    t1_ns: int
    on_ns: int
    preempted: bool
    n: int = 1


class ExactSpans:
    """The recorder's stretches in, `cpu.run` events out, near neighbours merged."""

    def __init__(self, run_t0_ns: int) -> None:
        self.run_t0_ns = run_t0_ns
        self._pending: dict[tuple[int, int], _Exact] = {}

    def add(self, spans: Iterable[Span], running: Iterable[Running]) -> list[dict[str, Any]]:
        """Stretches finished since the last call (by t0), and the threads on a core now.

        A stretch is held back while its thread is back on the same core within the gap:
        the next one will extend it.
        """
        out = []
        for s in spans:
            key = (s.pid, s.tid)
            p = self._pending.get(key)
            if p is not None and p.cpu == s.cpu and s.t0_ns - p.t1_ns < MERGE_GAP_NS:
                p.t1_ns, p.preempted, p.n = s.t1_ns, s.preempted, p.n + 1
                p.on_ns += s.t1_ns - s.t0_ns
                continue
            if p is not None:
                out.append(self._event(p))
            self._pending[key] = _Exact(s.pid, s.tid, s.cpu, s.t0_ns, s.t1_ns,
                                        s.t1_ns - s.t0_ns, s.preempted)
        now = {(r.pid, r.tid): r for r in running}
        for key, p in list(self._pending.items()):
            r = now.get(key)
            if r is None or r.cpu != p.cpu or r.t0_ns - p.t1_ns >= MERGE_GAP_NS:
                out.append(self._event(self._pending.pop(key)))
        return out

    def flush(self) -> list[dict[str, Any]]:
        out = [self._event(p) for p in self._pending.values()]
        self._pending.clear()
        return out

    def _event(self, p: _Exact) -> dict[str, Any]:
        data: dict[str, Any] = {"tid": p.tid, "cpu": p.cpu,
                                "t0": _seconds(p.t0_ns, self.run_t0_ns),
                                "t1": _seconds(p.t1_ns, self.run_t0_ns),
                                "preempted": p.preempted}
        if p.n > 1:
            data.update(share=round(p.on_ns / max(1, p.t1_ns - p.t0_ns), 4), n=p.n)
        return server_event("cpu.run", data, t_ns=p.t1_ns, pid=p.pid, cpu=p.cpu)


def _seconds(t_ns: int, run_t0_ns: int) -> float:
    return round((t_ns - run_t0_ns) / 1e9, 6)


@dataclass
class _Open:
    cpu: int
    t0_ns: int
    t1_ns: int
    run_ns: int  # time really on a core within [t0, t1]

    @property
    def share(self) -> float:
        return self.run_ns / max(1, self.t1_ns - self.t0_ns)


class SampledSpans:
    """Per-thread run-time readings in: each period's share, and (if `emit`) `cpu.run`
    events with a share out. With `emit` False only the shares are wanted (proc.state's
    `oncpu` when the stretches come from the kernel's switch records instead)."""

    def __init__(self, run_t0_ns: int, emit: bool = True) -> None:
        self.run_t0_ns = run_t0_ns
        self.emit = emit
        self._last: dict[tuple[int, int], tuple[int, int]] = {}  # key -> (t_ns, run_ns)
        self._open: dict[tuple[int, int], _Open] = {}
        self._carry: dict[tuple[int, int], int] = {}  # run time not yet placed, ns

    def reading(self, pid: int, tid: int, t_ns: int, run_ns: int,
                cpu: int) -> tuple[float | None, list[dict[str, Any]]]:
        """One sample of a thread: its total run time now, and the core it last ran on.

        Returns the share of the period since its last reading that it spent on a core
        (None for a first reading), and the stretches this reading closed.
        """
        key = (pid, tid)
        last = self._last.get(key)
        self._last[key] = (t_ns, run_ns)
        if last is None or t_ns <= last[0]:
            return None, []
        t_prev, run_prev = last
        # More run time than wall time between two readings means a reading was late
        # (the sampler waited for its GIL between the read and the clock): what does
        # not fit this period is carried into the next one, never dropped.
        ran = max(0, run_ns - run_prev) + self._carry.pop(key, 0)
        if ran > t_ns - t_prev:
            self._carry[key] = ran - (t_ns - t_prev)
            ran = t_ns - t_prev
        share = ran / (t_ns - t_prev)
        if not self.emit:
            return share, []
        span = self._open.get(key)
        out: list[dict[str, Any]] = []
        if span is not None and (share < MIN_SHARE or span.cpu != cpu
                                 or abs(span.share - share) >= MERGE_SHARE):
            out.append(self._event(key, self._open.pop(key)))
            span = None
        if share < MIN_SHARE:
            return share, out
        if span is None:
            self._open[key] = _Open(cpu, t_prev, t_ns, ran)
        else:
            span.t1_ns = t_ns
            span.run_ns += ran
        return share, out

    def forget(self, pid: int, tid: int) -> None:
        """No reading for a while (a thread not runnable, when only shares are wanted)."""
        self._last.pop((pid, tid), None)
        self._carry.pop((pid, tid), None)

    def gone(self, pid: int, tid: int | None = None) -> list[dict[str, Any]]:
        """A thread (or, tid None, every thread of a process) is gone: close its stretch."""
        keys = [k for k in self._open if k[0] == pid and (tid is None or k[1] == tid)]
        for k in [k for k in self._last if k[0] == pid and (tid is None or k[1] == tid)]:
            del self._last[k]
            self._carry.pop(k, None)
        return [self._event(k, self._open.pop(k)) for k in keys]

    def flush(self) -> list[dict[str, Any]]:
        """Every open stretch, closed: the run is over."""
        out = [self._event(k, span) for k, span in self._open.items()]
        self._open.clear()
        self._last.clear()
        self._carry.clear()
        return out

    def _event(self, key: tuple[int, int], span: _Open) -> dict[str, Any]:
        pid, tid = key
        return server_event("cpu.run", {
            "tid": tid, "cpu": span.cpu, "t0": _seconds(span.t0_ns, self.run_t0_ns),
            "t1": _seconds(span.t1_ns, self.run_t0_ns), "share": round(span.share, 3)},
            t_ns=span.t1_ns, pid=pid, cpu=span.cpu)
