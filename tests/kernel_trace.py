"""The kernel's own record of who ran on which core: the reference the core lanes are
checked against (issue 11).

Runs in the test process (as root). `KernelTrace` records the scheduler tracepoints of
every CPU into a private ftrace instance while its `with` block runs; `Replay` rebuilds
from them, per thread, the stretches it spent on a core:

    with KernelTrace() as kt:
        ...start a run, wait for it...
    tids = kt.tree(main_pid)                  # the process, its threads, its descendants
    spans = kt.on_cpu_spans(tids)             # [Span(tid, cpu, t0_ns, t1_ns), ...]
    on_cpu_total(spans, tid)                  # ns on a core
    overlap_fraction(spans_a, spans_b, t0, t1)  # share of [t0, t1] with both on cores
    print(kt.summary())                       # events, rebuilt switch-ins per CPU

Times are CLOCK_MONOTONIC nanoseconds (`trace_clock` mono, checked against
`time.monotonic_ns()` with a marker at each end); the text buffer prints microseconds, so
each end is rounded down to the microsecond.

Why everything is recorded, not just the tree (`set_event_pid` with `event-fork`): that
filter keeps a sched_switch when prev *or* next is followed, but a sched_migrate_task or
sched_waking only when the task *doing* it is followed (not the load balancer, not the
other process that wakes ours), and the rebuild below needs every CPU's other tasks.
Filtering by the tree happens afterwards, with the tree learned from sched_process_fork
(which fires for threads too). A busy 2-core machine makes ~25k events/s.

What this machine's tracing really does (a Firecracker VM, kernel 6.18, 2 CPUs): some
switches are never recorded, although the ring buffer reports no loss.

  - On CPU 1 no switch *from the idle task* is ever recorded (CPU 0 records them); the
    idle task's own events there (wakeups from interrupts) are. That is ~100-450 missing
    switch-ins per second of a workload that wakes CPU 1 from idle.
  - On either CPU, switches out of the threads of pid 1, the VM's agent (process_api:
    `tokio-rt-worker`, `vsock-console`, `spawner`), are mostly missing: a few to ~50 per
    second, with the agent's events in between (interrupts taken while it ran) recorded.

So a task can be switched out on a CPU without its switch-in there. Such a switch-in is
rebuilt (counted per CPU in `rebuilt_switch_ins`, listed by `rebuilt_spans`) in two
steps. First a floor, the latest instant before which the task provably was not running
there:

  - the CPU's previous traced sched_switch, and its latest event of any kind in another
    task's context (an interrupt taken while the agent still ran, say);
  - the task's own previous switch-out, anywhere;
  - if it went to sleep then (prev_state not R): its first sched_waking / sched_wakeup
    since (a later one can hit it already running: try_to_wake_up on a task that has
    set its state but not yet left the core still traces sched_wakeup; and sched_waking
    is traced in the waker's context, where the wakeup itself, done by an idle CPU 1
    on the waker's behalf, can be missing);
  - its last sched_migrate_task to that CPU since then.

The issue's rule (the later of its last wakeup to that CPU and the CPU's previous switch)
goes wrong both ways here: a later wakeup of a task already running drops the stretch
before it, and when the agent ran on after the wakeup, or the wakeup is missing, all of
the agent's (or the idle CPU's) time is counted (measured: -13 % to +8 % per process on a
handoff of ~100 µs stretches, ~30 ms per process). So, second, with
`rebuild_from_runtime` (the default) the start is `switch-out - run time`, where the run
time is what the scheduler accounted to the task on that CPU after the floor
(sched_stat_runtime, emitted in the task's own context at ticks and at the switch-out, so
it is traced). This uses the kernel's run-time accounting (the figure schedstat sums) for
the rebuilt stretches only; the tests check the floor alone as well
(`replay(rebuild_from_runtime=False)`).

The task the CPU was last switched to is the idle task in the idle case; when it is a real
task, its switch-out went missing with it, and its span is closed at the rebuilt start
(`lost_switch_outs`, `cut_spans`). A task on a core when the recording starts gets a span
from the start marker (`started_before`).

How the spans compare with schedstat (tests/test_kernel_trace.py): per thread, within 0.9
% over 5 runs (the floor alone: 1.6 %); with `perf record --switch-events` (which loses
no switch-in here) on two GIL threads, within 0.3 %. They cannot agree exactly: the
scheduler's clock for a switch is read when __schedule starts or, after a wakeup that
preempts (the `N` flag on the sched_wakeup line), not read again, so the woken task is
accounted from the wakeup and the preempted one until it (measured: such stretches are
accounted ~7 µs longer, the wakeup-to-switch time). That is ~0.1-0.5 % for a CPU-bound
thread, up to 1.5 % when a busy machine preempts it ~700 times a second, and 1-3 % (under
schedstat) for a task whose stretches are ~100 µs.

An overrun (`dropped events`, `overrun` or `commit overrun` in per_cpu/cpuN/stats, fewer
entries in the buffer than written, or a marker missing) raises `KernelTraceOverrun`: a
reference with holes would be wrong, not approximate. The buffer keeps the oldest events
(`overwrite` 0); raise `buffer_size_kb` (per CPU) for long recordings.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = ("sched_switch", "sched_waking", "sched_wakeup", "sched_wakeup_new",
          "sched_migrate_task", "sched_stat_runtime", "sched_process_fork",
          "sched_process_exit")
DEFAULT_BUFFER_KB = 65536  # per CPU: ~40 s of a busy 2-core machine
MARKER = "procscope-kernel-trace"
# The markers carry time.monotonic_ns() as written; the trace stamps them with its own
# clock microseconds later. Further apart than this: not the same clock.
CLOCK_TOLERANCE_NS = 5_000_000

_instance_numbers = itertools.count()

_LINE = re.compile(
    r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*(?P<tgid>[-\d]+)\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?P<flags>\S+)\s+(?P<sec>\d+)\.(?P<usec>\d{6}):\s+(?P<event>\w+):\s(?P<body>.*)$")
_SWITCH = re.compile(
    r"prev_comm=(?P<prev_comm>.*) prev_pid=(?P<prev>-?\d+) prev_prio=-?\d+ "
    r"prev_state=(?P<state>\S+) ==> next_comm=(?P<next_comm>.*) next_pid=(?P<next>-?\d+) "
    r"next_prio=-?\d+$")
_WAKEUP = re.compile(r"comm=.* pid=(?P<pid>\d+) prio=-?\d+ target_cpu=(?P<cpu>\d+)$")
_MIGRATE = re.compile(r"comm=.* pid=(?P<pid>\d+) prio=-?\d+ orig_cpu=\d+ dest_cpu=(?P<cpu>\d+)$")
_RUNTIME = re.compile(r"comm=.* pid=(?P<pid>\d+) runtime=(?P<runtime>\d+)")
_FORK = re.compile(r"comm=.* pid=(?P<parent>\d+) child_comm=.* child_pid=(?P<child>\d+)$")
_MARK = re.compile(MARKER + r" (?P<what>start|stop) (?P<ns>\d+)")
_RETURNED = re.compile(MARKER + r" (?P<what>start|stop)-returned (?P<ns>\d+)")
_ENTRIES = re.compile(r"entries-in-buffer/entries-written: (\d+)/(\d+)")


class Span(NamedTuple):
    """A stretch one thread spent on one core, in CLOCK_MONOTONIC ns."""

    tid: int
    cpu: int
    t0_ns: int
    t1_ns: int


class TracefsUnavailable(RuntimeError):
    """tracefs cannot be mounted or written here (not root, a locked-down kernel, ...)."""


class KernelTraceOverrun(RuntimeError):
    """The ring buffer lost events: the recording is not a reference."""


def mount_tracefs(root: Path = TRACEFS) -> Path:
    """Make sure tracefs is mounted at `root`; raise TracefsUnavailable saying why not."""
    if (root / "instances").is_dir():
        return root
    try:
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", str(root)],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TracefsUnavailable(f"cannot run mount -t tracefs: {exc}") from exc
    if done.returncode != 0 or not (root / "instances").is_dir():
        raise TracefsUnavailable(
            f"mount -t tracefs nodev {root} failed (uid {os.getuid()}): "
            f"{(done.stderr or done.stdout).strip() or 'no instances/ directory'}")
    return root


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _remove_stale_instances(instances: Path) -> None:
    """Instances left by a process killed before it could clean up (its pid is gone)."""
    for entry in instances.glob("procscope-*-*"):
        try:
            owner = int(entry.name.split("-")[1])
        except ValueError:
            continue
        if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):  # another process removed it first
                entry.rmdir()


def _ns(match: re.Match[str]) -> int:
    return int(match["sec"]) * 1_000_000_000 + int(match["usec"]) * 1000


class KernelTrace:
    """A recording of the scheduler tracepoints of all CPUs while the `with` block runs.

    After the block: `text` (the trace as tracefs printed it), `stats` (per CPU), and the
    queries of a `Replay` with `rebuild_from_runtime` (`replayed`), delegated to.

    `events` (of tracefs' `sched` group) can leave out sched_stat_runtime: every read of
    a running task's CPU clock (`time.process_time()`, `thread_time()`, /proc/<pid>/stat)
    emits one, so a loop that reads it without pause makes millions a second and fills
    the buffer; without them rebuilt switch-ins stay at the floor.
    """

    def __init__(self, buffer_size_kb: int = DEFAULT_BUFFER_KB, root: Path = TRACEFS,
                 rebuild_from_runtime: bool = True,
                 events: Iterable[str] = EVENTS) -> None:
        self.buffer_size_kb = buffer_size_kb
        self.events = tuple(events)
        self.root = root
        self.rebuild_from_runtime = rebuild_from_runtime
        self.instance: Path | None = None
        self.text = ""
        self.stats: dict[int, dict[str, int]] = {}
        self._replay: Replay | None = None

    def __enter__(self) -> KernelTrace:
        root = mount_tracefs(self.root)
        _remove_stale_instances(root / "instances")
        name = f"procscope-{os.getpid()}-{next(_instance_numbers)}"
        try:
            (root / "instances" / name).mkdir()
        except OSError as exc:
            raise TracefsUnavailable(f"cannot create ftrace instance {name}: {exc}") from exc
        self.instance = root / "instances" / name
        try:
            self._configure(self.instance)
            self._mark("start")
        except BaseException:
            self._remove_instance()
            raise
        return self

    def _configure(self, inst: Path) -> None:
        _write(inst / "tracing_on", "0")
        _write(inst / "trace_clock", "mono")
        # Keep the oldest events when full and count the rest as dropped: an overrun must
        # be seen (and fail), never silently turn into a shorter recording.
        _write(inst / "options" / "overwrite", "0")
        _write(inst / "options" / "record-tgid", "1")
        _write(inst / "buffer_size_kb", str(self.buffer_size_kb))
        for event in self.events:
            _write(inst / "events" / "sched" / event / "enable", "1")
        _write(inst / "tracing_on", "1")

    def _mark(self, what: str) -> None:
        assert self.instance is not None
        _write(self.instance / "trace_marker", f"{MARKER} {what} {time.monotonic_ns()}\n")
        # When the write returned: a writer preempted between its clock read and its write
        # (tens of ms on a busy machine) has its marker stamped that much later, rightly.
        # A full buffer refuses it: the clock check then falls back to the tolerance alone.
        with contextlib.suppress(OSError):
            _write(self.instance / "trace_marker",
                   f"{MARKER} {what}-returned {time.monotonic_ns()}\n")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.instance is not None
        try:
            try:
                self._mark("stop")
                marked = True
            except OSError:  # a full buffer that keeps its oldest events refuses it
                marked = False
            _write(self.instance / "tracing_on", "0")
            self.stats = self._read_stats(self.instance)
            self.text = (self.instance / "trace").read_bytes().decode("utf-8", "replace")
        finally:
            self._remove_instance()
        if exc_type is None:
            self._check_overrun()
            if not marked:
                raise KernelTraceOverrun("the ring buffer refused the stop marker (full?)")
            self._replay = self.replay(self.rebuild_from_runtime)

    def _remove_instance(self) -> None:
        if self.instance is None:
            return
        for attempt in range(50):
            try:
                self.instance.rmdir()
                break
            except OSError as exc:
                # EBUSY while a reader still has a file of it open: nothing to wait on.
                if exc.errno != errno.EBUSY or attempt == 49:
                    raise
                time.sleep(0.02)
        self.instance = None

    @staticmethod
    def _read_stats(inst: Path) -> dict[int, dict[str, int]]:
        stats = {}
        for cpu_dir in sorted((inst / "per_cpu").glob("cpu*")):
            fields = {}
            for line in (cpu_dir / "stats").read_text().splitlines():
                key, _, value = line.partition(":")
                if value.strip().isdigit():
                    fields[key.strip()] = int(value.strip())
            stats[int(cpu_dir.name[3:])] = fields
        return stats

    def _check_overrun(self) -> None:
        lost: dict[int, dict[str, int]] = {}
        for cpu, fields in self.stats.items():
            bad = {k: v for k, v in fields.items()
                   if k in ("overrun", "commit overrun", "dropped events") and v}
            if bad:
                lost[cpu] = bad
        header = _ENTRIES.search(self.text[:2000])
        if header and header.group(1) != header.group(2):
            lost[-1] = {"entries in buffer": int(header.group(1)),
                        "entries written": int(header.group(2))}
        if lost:
            raise KernelTraceOverrun(
                f"ftrace lost events {lost} with buffer_size_kb={self.buffer_size_kb} per "
                "CPU: record less or raise buffer_size_kb")

    def replay(self, rebuild_from_runtime: bool = True) -> Replay:
        """The recording analysed again, e.g. without the run-time step of the rebuild."""
        return Replay(self.text, rebuild_from_runtime)

    @property
    def replayed(self) -> Replay:
        if self._replay is None:
            raise RuntimeError("no recording yet: use the `with` block first")
        return self._replay

    # The queries, on the default replay.
    @property
    def start_ns(self) -> int:
        return self.replayed.start_ns

    @property
    def stop_ns(self) -> int:
        return self.replayed.stop_ns

    def tree(self, root_pid: int) -> set[int]:
        return self.replayed.tree(root_pid)

    def tgid(self, tid: int) -> int | None:
        return self.replayed.tgid(tid)

    def on_cpu_spans(self, tids: Iterable[int]) -> list[Span]:
        return self.replayed.on_cpu_spans(tids)

    def rebuilt_spans(self, tids: Iterable[int]) -> list[Span]:
        return self.replayed.rebuilt_spans(tids)

    def asleep_ns(self, tid: int, t0: int, t1: int) -> int:
        return self.replayed.asleep_ns(tid, t0, t1)

    def summary(self) -> str:
        return self.replayed.summary() + "; no overrun"


class _ReplayState:
    """What the replay knows at each instant of the trace (tids are kernel pids)."""

    def __init__(self) -> None:
        self.running: dict[int, tuple[int, int, str]] = {}  # cpu -> (tid, since, name)
        self.last_switch: dict[int, int] = {}          # cpu -> ns of its latest traced switch
        self.left: dict[int, tuple[int, bool]] = {}    # tid -> (ns of last switch-out, slept)
        self.woken: dict[int, int] = {}    # tid -> first waking/wakeup since it left a core
        self.migrated: dict[tuple[int, int], int] = {}  # (tid, cpu) -> last migrate there
        # tid -> [(ns, cpu, run time accounted)] from sched_stat_runtime since it left a core
        self.runtime: dict[int, list[tuple[int, int, int]]] = {}
        # cpu -> the two latest distinct contexts of events on it: [(tid, ns), (tid, ns)]
        self.contexts: dict[int, list[tuple[int, int]]] = {}

    def saw(self, cpu: int, tid: int, ts: int) -> None:
        """An event on `cpu` in the context of `tid` (the task running there then)."""
        latest = self.contexts.setdefault(cpu, [(tid, ts)])
        if latest[0][0] == tid:
            latest[0] = (tid, ts)
        else:
            latest[:] = [(tid, ts), latest[0]]

    def last_seen_other(self, cpu: int, tid: int) -> int:
        """ns of the latest event on `cpu` in another task's context (0 if none)."""
        for other, ts in self.contexts.get(cpu, ()):
            if other != tid:
                return ts
        return 0


class Replay:
    """On-core spans per thread, rebuilt from the text of a KernelTrace (module docstring)."""

    def __init__(self, text: str, rebuild_from_runtime: bool = True) -> None:
        self.rebuild_from_runtime = rebuild_from_runtime
        self.start_ns = self.stop_ns = 0
        self.events = 0
        self.rebuilt_switch_ins: Counter[int] = Counter()
        """Per CPU: switch-ins rebuilt because the trace lacks them (all tasks)."""
        self.rebuilt_from_runtime: Counter[int] = Counter()
        """Per CPU: those of them placed by accounted run time (the rest at the floor)."""
        self.missing_after: Counter[tuple[int, str]] = Counter()
        """(cpu, name of the task the trace had last switched to there) per missing switch."""
        self.lost_switch_outs: Counter[int] = Counter()
        """Per CPU: real tasks (not idle) whose switch-out went missing (span cut)."""
        self.started_before: Counter[int] = Counter()
        """Per CPU: a task already on the core when the recording started."""
        self._spans: dict[int, list[Span]] = defaultdict(list)
        self._rebuilt: set[Span] = set()
        self._cut: set[Span] = set()
        self._slept: dict[Span, int | None] = {}  # span that ended in a sleep -> woken at
        self._asleep: dict[int, Span] = {}  # tid -> its latest span, if it ended in a sleep
        self._children: dict[int, list[int]] = defaultdict(list)
        self._tgid: dict[int, int] = {}
        self._read_markers(text)
        self._replay(text)

    def _read_markers(self, text: str) -> None:
        marks: dict[str, tuple[int, int]] = {}
        returned: dict[str, int] = {}
        for line in text.splitlines():
            if MARKER in line:
                m, k = _LINE.match(line), _MARK.search(line)
                if m and k:
                    marks[k["what"]] = (int(k["ns"]), _ns(m))
                elif r := _RETURNED.search(line):
                    returned[r["what"]] = int(r["ns"])
        if set(marks) != {"start", "stop"}:
            raise KernelTraceOverrun(f"start/stop markers missing from the trace: {marks}")
        for what, (written, stamped) in marks.items():
            latest = max(written, returned.get(what, written))
            if not written - CLOCK_TOLERANCE_NS <= stamped <= latest + CLOCK_TOLERANCE_NS:
                raise RuntimeError(
                    f"trace clock is not CLOCK_MONOTONIC: {what} marker written at "
                    f"{written} ns, stamped {stamped} ns")
        self.start_ns, self.stop_ns = marks["start"][1], marks["stop"][1]

    def _replay(self, text: str) -> None:
        state = _ReplayState()
        for line in text.splitlines():
            m = _LINE.match(line)
            if m is None:
                continue
            ts, cpu, event, body = _ns(m), int(m["cpu"]), m["event"], m["body"]
            self.events += 1
            context = int(m["pid"])
            if m["tgid"] and m["tgid"].isdigit():
                self._tgid[context] = int(m["tgid"])
            state.saw(cpu, context, ts)
            if event == "sched_switch":
                s = _SWITCH.match(body)
                if s is None:
                    raise ValueError(f"unparsed sched_switch: {line!r}")
                self._switch(state, cpu, ts, int(s["prev"]), s["state"], int(s["next"]),
                             s["next_comm"])
            elif event in ("sched_waking", "sched_wakeup", "sched_wakeup_new"):
                w = _WAKEUP.match(body)
                if w:
                    state.woken.setdefault(int(w["pid"]), ts)
            elif event == "sched_stat_runtime":
                r = _RUNTIME.match(body)
                if r:
                    state.runtime.setdefault(int(r["pid"]), []).append(
                        (ts, cpu, int(r["runtime"])))
            elif event == "sched_migrate_task":
                g = _MIGRATE.match(body)
                if g:
                    state.migrated[(int(g["pid"]), int(g["cpu"]))] = ts
            elif event == "sched_process_fork":
                f = _FORK.match(body)
                if f:
                    self._children[int(f["parent"])].append(int(f["child"]))
        for cpu, (tid, since, _) in state.running.items():
            if tid != 0:
                self._spans[tid].append(Span(tid, cpu, since, max(since, self.stop_ns)))
        for tid, span in self._asleep.items():
            self._slept[span] = state.woken.get(tid)

    def _rebuilt_start(self, state: _ReplayState, cpu: int, tid: int,
                       out_ns: int) -> tuple[int, bool]:
        """When `tid`, switched out of `cpu` at `out_ns` without a traced switch-in there,
        started running (module docstring: the floor, then the accounted run time), and
        whether the run time placed it."""
        bounds = [state.last_switch.get(cpu, self.start_ns), self.start_ns,
                  state.last_seen_other(cpu, tid)]
        left = state.left.get(tid)
        if left is not None:
            left_ns, slept = left
            bounds.append(left_ns)
            if slept and tid in state.woken:
                bounds.append(state.woken[tid])
            moved = state.migrated.get((tid, cpu))
            if moved is not None and moved > left_ns:
                bounds.append(moved)
        floor = min(out_ns, max(bounds))
        if not self.rebuild_from_runtime:
            return floor, False
        ran = sum(ns for ts, on, ns in state.runtime.get(tid, ()) if on == cpu and ts > floor)
        if ran == 0:
            return floor, False
        return min(out_ns, max(floor, out_ns - ran)), True

    def _switch(self, state: _ReplayState, cpu: int, ts: int, prev: int, prev_state: str,
                nxt: int, next_name: str) -> None:
        current = state.running.get(cpu)
        if current is not None and current[0] == prev:
            start = current[1]
        else:
            start, by_runtime = self._rebuilt_start(state, cpu, prev, ts)
            if current is None:
                self.started_before[cpu] += 1
            else:
                self.rebuilt_switch_ins[cpu] += 1
                self.rebuilt_from_runtime[cpu] += by_runtime
                self.missing_after[(cpu, current[2])] += 1
                if current[0] != 0:
                    # The missing switch was also the switch-out of a real task.
                    self.lost_switch_outs[cpu] += 1
                    cut = Span(current[0], cpu, current[1], max(current[1], start))
                    self._spans[current[0]].append(cut)
                    self._cut.add(cut)
        if prev != 0:
            if prev in self._asleep:
                self._slept[self._asleep.pop(prev)] = state.woken.get(prev)
            span = Span(prev, cpu, start, ts)
            self._spans[prev].append(span)
            if current is not None and current[0] != prev:
                self._rebuilt.add(span)
            # R / R+: preempted, still runnable; anything else: it went to sleep.
            slept = not prev_state.startswith("R")
            state.left[prev] = (ts, slept)
            if slept:
                self._asleep[prev] = span
            state.woken.pop(prev, None)
            state.runtime.pop(prev, None)
        state.running[cpu] = (nxt, ts, next_name)
        state.last_switch[cpu] = ts

    def tree(self, root_pid: int) -> set[int]:
        """`root_pid` and every task (process or thread) forked from it or from its
        descendants while recording."""
        found, todo = set(), [root_pid]
        while todo:
            tid = todo.pop()
            if tid not in found:
                found.add(tid)
                todo.extend(self._children.get(tid, ()))
        return found

    def tgid(self, tid: int) -> int | None:
        """The process a thread belongs to, as the trace recorded it (None if it never ran)."""
        return self._tgid.get(tid)

    def on_cpu_spans(self, tids: Iterable[int]) -> list[Span]:
        """The on-core spans of these threads, in time order."""
        spans = [s for tid in set(tids) for s in self._spans.get(tid, ())]
        return sorted(spans, key=lambda s: (s.t0_ns, s.tid))

    def asleep_ns(self, tid: int, t0: int, t1: int) -> int:
        """ns of [t0, t1] thread `tid` spent asleep (from a switch-out into a sleep, not a
        preemption, to its wakeup, or to its next switch-in where the wakeup is missing),
        as opposed to on a core or waiting for one."""
        spans = sorted(self._spans.get(tid, ()), key=lambda s: s.t0_ns)
        total = 0
        for span, nxt in zip(spans, [*spans[1:], None], strict=True):
            if span not in self._slept:
                continue
            woken = self._slept[span]
            until = self.stop_ns if nxt is None else nxt.t0_ns
            if woken is not None and span.t1_ns <= woken < until:
                until = woken
            total += max(0, min(until, t1) - max(span.t1_ns, t0))
        return total

    def rebuilt_spans(self, tids: Iterable[int]) -> list[Span]:
        """Those of their spans that start at a rebuilt switch-in."""
        wanted = set(tids)
        return sorted((s for s in self._rebuilt if s.tid in wanted), key=lambda s: s.t0_ns)

    def cut_spans(self, tids: Iterable[int]) -> list[Span]:
        """Those of their spans whose switch-out is missing (cut at the rebuilt start of
        the next task on that CPU)."""
        wanted = set(tids)
        return sorted((s for s in self._cut if s.tid in wanted), key=lambda s: s.t0_ns)

    def summary(self) -> str:
        """One line for a report: events, rebuilt switch-ins per CPU and after what."""
        cpus = sorted({cpu for cpu, _ in self.missing_after} | {0, 1})
        after = ", ".join(f"cpu{cpu} after {name}: {n}"
                          for (cpu, name), n in self.missing_after.most_common(6))
        return (f"{self.events} events over {(self.stop_ns - self.start_ns) / 1e9:.2f} s; "
                "rebuilt switch-ins "
                + ", ".join(f"cpu{c}={self.rebuilt_switch_ins[c]} "
                            f"({self.rebuilt_from_runtime[c]} by run time)" for c in cpus)
                + f" [{after}]; cut switch-outs {dict(self.lost_switch_outs)}")


def on_cpu_total(spans: Iterable[Span], tid: int | None = None) -> int:
    """ns that thread `tid` (None: every thread of `spans`) spent on a core."""
    return sum(s.t1_ns - s.t0_ns for s in spans if tid is None or s.tid == tid)


def _union(spans: Iterable[Span], t0: int, t1: int) -> Iterator[tuple[int, int]]:
    """The instants of [t0, t1] at which at least one of `spans` is on a core, merged."""
    cur: tuple[int, int] | None = None
    for s in sorted(spans, key=lambda s: s.t0_ns):
        a, b = max(s.t0_ns, t0), min(s.t1_ns, t1)
        if a >= b:
            continue
        if cur is not None and a <= cur[1]:
            cur = (cur[0], max(cur[1], b))
            continue
        if cur is not None:
            yield cur
        cur = (a, b)
    if cur is not None:
        yield cur


def overlap_fraction(spans_a: Iterable[Span], spans_b: Iterable[Span], t0: int,
                     t1: int) -> float:
    """The fraction of [t0, t1] (ns) during which some span of `a` and some span of `b`
    are on cores at the same time."""
    if t1 <= t0:
        raise ValueError(f"empty window [{t0}, {t1}]")
    a, b = list(_union(spans_a, t0, t1)), list(_union(spans_b, t0, t1))
    both, i, j = 0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            both += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return both / (t1 - t0)


# --- comparing a drawing with the reference: a stretch drawn at a share (cpu.run) ---------

Drawn = tuple[int, int, float]  # (t0_ns, t1_ns, share): one cpu.run stretch as drawn


def _density(spans: Iterable[Drawn], t0: int, t1: int) -> list[tuple[int, float]]:
    """A worker's drawn density over [t0, t1] as steps: [(from_ns, value)], capped at 1."""
    deltas: dict[int, float] = {}
    for a, b, share in spans:
        a, b = max(a, t0), min(b, t1)
        if a < b:
            deltas[a] = deltas.get(a, 0.0) + share
            deltas[b] = deltas.get(b, 0.0) - share
    steps, level = [(t0, 0.0)], 0.0
    for t in sorted(deltas):
        level += deltas[t]
        steps.append((t, min(1.0, max(0.0, level))))
    return steps


def drawn_overlap(a: Iterable[Drawn], b: Iterable[Drawn], t0: int, t1: int) -> float:
    """The fraction of [t0, t1] both drawn on cores: the integral of density_a x density_b."""
    da, db = _density(a, t0, t1), _density(b, t0, t1)
    cuts = sorted({t for t, _ in da} | {t for t, _ in db} | {t1})
    both, i, j = 0.0, 0, 0
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        while i + 1 < len(da) and da[i + 1][0] <= lo:
            i += 1
        while j + 1 < len(db) and db[j + 1][0] <= lo:
            j += 1
        both += (hi - lo) * da[i][1] * db[j][1]
    return both / (t1 - t0)
