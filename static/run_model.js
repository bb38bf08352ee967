// One run's events, turned into what the timeline draws: lanes, spans, marks, tracks.
//
// Runs in the browser (and under node --test: tests/js/run_model.test.js). Pure data, no
// drawing: timeline.js reads it every frame. Every per-lane and per-core list is kept
// sorted by `t` (time_sorted.js), so the renderer can binary-search the visible window.
//
// Nothing here invents: a lane exists because a process said proc.start or the kernel
// sampler saw it (proc.state); a core mark exists because an event or the sampler named
// that core. Nothing here knows a lesson by name either: the tracks drawn are the ones the
// lesson declares (its spec's `tracks`, from GET /api/experiments).

import { processColor } from "./palette.js";
import { markShape } from "./marks.js";
import { Lane } from "./lane.js";
import { insertSorted } from "./time_sorted.js";

/** The shared-resource tracks, in the order they are drawn (experiments/spec.py's TRACK_KINDS). */
export const TRACK_KINDS = ["lock", "queue", "sold"];

/** Kinds drawn as spans (or tracks) rather than as point marks on a process lane. */
const SPAN_KINDS = new Set(["proc.start", "proc.exit", "proc.state", "lock.wait", "lock.acquire",
  "lock.release", "join.wait", "join.done", "task.start", "task.end"]);

export class RunModel {
  /**
   * @param {object} run the run's JSON (GET /api/runs/{id}): its experiment and params
   * @param {number} coreCount core lanes to draw before any event names a core
   * @param {object} tracks the lesson's declared tracks, {lock: {}, sold: {always, stock_param}}
   */
  constructor(run, coreCount, tracks = {}) {
    this.run = run;
    this.declared = tracks || {};
    this.cores = [];
    this.ensureCores(coreCount);
    this.lanes = [];
    this.byKey = new Map();
    this.prints = [];
    this.count = 0;
    this.lastSeq = 0;
    this.missing = 0; // seq gaps seen (should stay 0: seq is gap-free)
    this.maxT = 0;
    this.maxTAt = 0; // performance.now() when maxT last grew
    this.endT = null;
    this.end = null; // run.end's data
    this.t0Wall = null; // run.start's t0_wall (seconds since the epoch), if it says
    this.samplerHz = null; // set when the kernel sampler had to slow down (sampler.rate)
    this.kinds = new Map();
    this.lock = { points: [], holds: [] }; // waiters +1/-1 points; hold spans of all lanes
    this.queue = { points: [] }; // {t, depth, kind, e}
    this.sold = { points: [] }; // {t, e}
    this.version = 0; // bumps on every change; the renderer redraws when it moves
  }

  ensureCores(n) {
    while (this.cores.length < n) this.cores.push({ ticks: [], runs: [] });
  }

  /** The run's clock now: its end, or the newest event plus the time since it arrived. */
  now(perfNow) {
    if (this.endT !== null) return this.endT;
    if (!this.count) return 0;
    return this.maxT + Math.max(0, perfNow - this.maxTAt) / 1000;
  }

  /** The tracks to draw now: declared by the lesson, and with something to show (data of
   * their own, or `always` once the run has begun: a stock line with no sale yet). */
  tracks() {
    const has = { lock: this.lock.points.length || this.lock.holds.length,
      queue: this.queue.points.length, sold: this.sold.points.length };
    return TRACK_KINDS.filter((name) => {
      const want = this.declared[name];
      return want && (has[name] || (want.always && this.count));
    });
  }

  /** The sold track's stock: the param the lesson names for it (`stock_param`), or null. */
  stock() {
    const param = this.declared.sold?.stock_param;
    const value = param ? this.run.params?.[param] : undefined;
    return value === undefined || value === null ? null : Number(value);
  }

  lane(key, pid, tid, e) {
    let lane = this.byKey.get(key);
    if (lane) return lane;
    lane = new Lane(key, pid, tid, this.lanes.length);
    if (tid) {
      // A thread's lane goes right under its process's lane, in the process's colour.
      const parent = this.byKey.get(pid);
      const at = parent ? this.lanes.lastIndexOf(parent) + 1 +
        this.lanes.filter((l) => l.pid === pid && l.tid).length : this.lanes.length;
      // A colour of its own: on the core lanes, threads taking turns on the GIL must be
      // told apart from each other, not just from other processes.
      if (parent) lane.name = `${parent.name} · t${tid}`;
      if (parent && parent.exit !== null) lane.exit = parent.exit; // seen late: ended with it
      this.lanes.splice(at, 0, lane);
    } else {
      // In order of first sight in time (the sampler may see a process before its own
      // proc.start arrives, or after a younger one's): the lanes then read as a staircase.
      const order = (l) => (l.tid ? this.byKey.get(l.pid)?.start ?? l.start : l.start);
      let at = this.lanes.length;
      while (at > 0 && order(this.lanes[at - 1]) > e.t) at -= 1;
      this.lanes.splice(at, 0, lane);
    }
    lane.start = e.t;
    lane.ppid = e.ppid ?? null;
    this.byKey.set(key, lane);
    return lane;
  }

  /** Add a batch of events (in seq order). */
  ingest(events, perfNow) {
    for (const e of events) this._one(e, perfNow);
    if (events.length) this.version += 1;
  }

  _one(e, perfNow) {
    this.count += 1;
    if (this.lastSeq && e.seq !== this.lastSeq + 1) this.missing += Math.max(0, e.seq - this.lastSeq - 1);
    this.lastSeq = e.seq;
    this.kinds.set(e.kind, (this.kinds.get(e.kind) || 0) + 1);
    if (e.t > this.maxT) {
      this.maxT = e.t;
      this.maxTAt = perfNow;
    }
    const kind = e.kind;
    const data = e.data || {};
    if (kind === "run.start") {
      // The run's t=0 on the server's wall clock, for the emit-to-screen delay.
      if (typeof data.t0_wall === "number") this.t0Wall = data.t0_wall;
      if (typeof data.cores === "number") this.ensureCores(data.cores);
      return;
    }
    if (kind === "sampler.rate") {
      // The kernel sampler slowed down to keep to its CPU budget: say so on screen.
      this.samplerHz = data.hz;
      return;
    }
    if (kind === "run.end") {
      this.endT = e.t;
      this.end = data;
      for (const lane of this.lanes) lane.closeAll(e.t);
      return;
    }
    if (kind === "print") this.prints.push(e);
    if (kind === "ticket.sold") insertSorted(this.sold.points, { t: e.t, e });
    if ((kind === "queue.put" || kind === "queue.get" || kind === "queue.full" ||
         kind === "queue.empty") && (data.depth !== undefined || kind !== "queue.get")) {
      insertSorted(this.queue.points, { t: e.t, depth: data.depth ?? null, kind, e });
    }
    if (kind === "proc.reap") {
      const child = this.byKey.get(data.child);
      if (child) child.reap = e.t;
    }
    // The server's own events (it reaps the main and adopted orphans) have no lane.
    if (e.pid === null || e.pid === undefined || e.proc === "procscope") return;

    const tid = kind === "proc.state" && data.tid && data.tid !== e.pid ? data.tid : null;
    const key = tid ? `${e.pid}/${tid}` : e.pid;
    if (tid && !this.byKey.has(key)) {
      // A sample taken as the process was exiting, arriving after its proc.exit: the
      // thread is gone with its process; a lane for it would run on to the end.
      const parent = this.byKey.get(e.pid);
      if (parent && parent.exit !== null && e.t >= parent.exit) return;
    }
    const lane = this.lane(key, e.pid, tid, e);
    if (e.cpu !== null && e.cpu !== undefined) this.ensureCores(e.cpu + 1);
    if (e.ppid !== null && e.ppid !== undefined && !tid) {
      if (lane.ppid !== null && e.ppid !== lane.ppid && kind !== "proc.exit") {
        lane.reparents.push({ t: e.t, from: lane.ppid, to: e.ppid, e });
      }
      lane.ppid = e.ppid;
    }

    switch (kind) {
      case "proc.start":
        lane.name = data.name || e.proc || lane.name;
        lane.role = data.role || null;
        lane.start = Math.min(lane.start ?? e.t, e.t);
        if (lane.role === "main") lane.color = processColor(0, "main");
        break;
      case "proc.exit":
        if (lane.exit === null) {
          lane.exit = e.t;
          lane.exitcode = data.exitcode ?? null;
          lane.exitSource = data.source || null;
          lane.closeAll(e.t);
          // Threads have no exit event of their own: they end with their process at the
          // latest (one that ended earlier is drawn until then: the sampler only reports
          // changes, not disappearances).
          for (const other of this.lanes) {
            if (other.tid && other.pid === lane.pid && other.exit === null) {
              other.exit = e.t;
              other.closeAll(e.t);
            }
          }
        }
        break;
      case "proc.state":
        this._state(lane, e, data);
        return; // states are drawn as on-cpu strips, not as marks
      case "lock.wait": {
        const span = { kind: "wait", t0: e.t, t1: null, label: "waiting for the lock", e0: e, e1: null };
        lane.spans.push(span);
        lane.open.lock = span;
        insertSorted(this.lock.points, { t: e.t, delta: +1, lane });
        break;
      }
      case "lock.acquire": {
        const waiting = lane.open.lock && lane.open.lock.kind === "wait" ? lane.open.lock : null;
        if (waiting) {
          waiting.t1 = e.t;
          waiting.e1 = e;
          insertSorted(this.lock.points, { t: e.t, delta: -1, lane });
        }
        const span = { kind: "hold", t0: e.t, t1: null, label: "holding the lock", e0: e, e1: null, lane };
        lane.spans.push(span);
        lane.open.lock = span;
        insertSorted(this.lock.holds, span);
        break;
      }
      case "lock.release":
        if (lane.open.lock && lane.open.lock.kind === "hold") {
          lane.open.lock.t1 = e.t;
          lane.open.lock.e1 = e;
        }
        lane.open.lock = null;
        break;
      case "join.wait": {
        const who = data.name || data.child || "a child";
        const span = { kind: "join", t0: e.t, t1: null, label: `in join() of ${who}`, e0: e, e1: null };
        lane.spans.push(span);
        lane.open.join.set(data.child ?? data.name ?? "?", span);
        break;
      }
      case "join.done": {
        const k = data.child ?? data.name ?? "?";
        const span = lane.open.join.get(k);
        if (span) {
          span.t1 = e.t;
          span.e1 = e;
          lane.open.join.delete(k);
        }
        break;
      }
      case "task.start": {
        const span = { kind: "task", t0: e.t, t1: null, label: `task ${data.task ?? data.i ?? ""}`.trim(), e0: e, e1: null };
        lane.spans.push(span);
        lane.open.task = span;
        break;
      }
      case "task.end":
        if (lane.open.task) {
          lane.open.task.t1 = e.t;
          lane.open.task.e1 = e;
        }
        lane.open.task = null;
        break;
      default:
        break;
    }
    if (!SPAN_KINDS.has(kind) || kind === "proc.exit" || kind === "proc.start") {
      insertSorted(lane.marks, e);
      const shape = markShape(kind);
      if (shape) {
        if (!lane.byShape.has(shape)) lane.byShape.set(shape, []);
        insertSorted(lane.byShape.get(shape), e);
      }
    }
    if (e.cpu !== null && e.cpu !== undefined && this.cores[e.cpu]) {
      insertSorted(this.cores[e.cpu].ticks, { t: e.t, lane, e });
    }
  }

  _state(lane, e, data) {
    const state = data.state;
    const core = data.cpu ?? e.cpu;
    if (core !== null && core !== undefined) this.ensureCores(core + 1);
    const prev = lane.state;
    lane.state = { t: e.t, state, core, e };
    if (state === "Z" && lane.zombieSince === null) lane.zombieSince = e.t;
    // R is the kernel's "runnable"; the sampler adds how much of it the process really
    // spent on a core (oncpu, 0-1, from schedstat). A process queued for a busy core is
    // not drawn on it.
    const running = state === "R" && (data.oncpu ?? 1) >= 0.5;
    if (lane.open.cpu && (!running || lane.open.cpu.core !== core)) {
      lane.open.cpu.t1 = e.t;
      lane.open.cpu = null;
    }
    // The sampler's report can arrive after the process's own proc.exit: a process seen
    // running just before it exited ran until its exit, not until the end of the run.
    const exited = lane.exit !== null;
    if (running && exited && e.t >= lane.exit) return;
    if (running && !lane.open.cpu && core !== null && core !== undefined) {
      const span = { t0: e.t, t1: exited ? lane.exit : null, core, lane, e };
      lane.onCpu.push(span);
      if (!exited) lane.open.cpu = span;
      insertSorted(this.cores[core].runs, { t: e.t, span });
    }
    if (prev === null && lane.start === null) lane.start = e.t;
  }
}
