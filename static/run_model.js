// One run's events, turned into what the timeline draws: lanes, spans, marks, tracks.
//
// Runs in the browser. Pure data, no drawing: timeline.js reads it every frame. Events
// arrive in seq order, which is the order the relay read them, not quite time order across
// processes (each process's own events are in time order). So every per-lane and per-core
// list is kept sorted by `t` with an insertion from the end, which is O(1) for the usual
// nearly-sorted arrival, and lets the renderer binary-search the visible window.
//
// Nothing here invents: a lane exists because a process said proc.start or the kernel
// sampler saw it (proc.state); a core mark exists because an event or the sampler named
// that core.

import { processColor } from "./palette.js";

/** How a point event is drawn on its process lane (null: not drawn, only hoverable). */
const MARKS = {
  "print": "tick",
  "ticket.sold": "star",
  "queue.put": "up",
  "queue.get": "down",
  "queue.full": "upAlert",
  "queue.empty": "downAlert",
  "error": "cross",
  "file.torn": "cross",
  "run.error": "cross",
  "callback.error": "cross",
  "handler.error": "cross",
  "proc.reap": "ring",
  "proc.start": null,
  "proc.exit": null,
};

export function markShape(kind) {
  if (kind in MARKS) return MARKS[kind];
  return kind.endsWith(".error") ? "cross" : "diamond";
}

/** Kinds drawn as spans (or tracks) rather than as point marks on a process lane. */
const SPAN_KINDS = new Set(["proc.start", "proc.exit", "proc.state", "lock.wait", "lock.acquire",
  "lock.release", "join.wait", "join.done", "task.start", "task.end"]);

export function insertSorted(list, item) {
  let i = list.length;
  while (i > 0 && list[i - 1].t > item.t) i -= 1;
  if (i === list.length) list.push(item);
  else list.splice(i, 0, item);
}

/** Index of the first item with t >= t0 (binary search). */
export function firstAtOrAfter(list, t0) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].t < t0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class Lane {
  constructor(key, pid, tid, index) {
    this.key = key;
    this.pid = pid;
    this.tid = tid; // a thread lane (from the sampler) has the thread's id here
    this.name = tid ? `thread ${tid}` : `pid ${pid}`;
    this.role = tid ? "thread" : null;
    this.color = processColor(index, null);
    this.ppid = null;
    this.start = null;
    this.exit = null;
    this.exitcode = null;
    this.exitSource = null;
    this.reap = null;
    this.zombieSince = null; // the kernel said Z
    this.marks = []; // point events on this lane, sorted by t (for hover)
    this.byShape = new Map(); // shape -> its marks, sorted by t (for drawing)
    this.spans = []; // {kind: wait|hold|join|task, t0, t1, label, e0, e1}
    this.onCpu = []; // {t0, t1, core}: the kernel says R on that core
    this.reparents = []; // {t, from, to, e}
    this.open = { lock: null, task: null, join: new Map(), cpu: null };
    this.state = null;
  }

  closeAll(t) {
    for (const span of [this.open.lock, this.open.task, ...this.open.join.values()]) {
      if (span && span.t1 === null) span.t1 = t;
    }
    this.open.lock = this.open.task = null;
    this.open.join.clear();
    if (this.open.cpu) this.open.cpu.t1 = t;
    this.open.cpu = null;
  }
}

export class RunModel {
  constructor(run, coreCount) {
    this.run = run;
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

  tracks() {
    const out = [];
    if (this.lock.points.length || this.lock.holds.length) out.push("lock");
    if (this.queue.points.length) out.push("queue");
    if (this.sold.points.length || (this.run.experiment === "ticket_rush" && this.count)) out.push("sold");
    return out;
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
