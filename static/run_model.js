// One run's events, turned into what the timeline draws: lanes, spans, marks, tracks.
//
// Runs in the browser (and under node --test: tests/js/run_model.test.js). Pure data, no
// drawing: timeline.js reads it every frame. Every per-lane and per-core list is kept
// sorted by `t` (time_sorted.js), so the renderer can binary-search the visible window.
//
// One switch over the event kinds, which reads best in one place; a lane's data (lane.js),
// the lanes' order (lane_order.js), the spans (spans.js) and the sorted lists
// (time_sorted.js) are apart.
//
// Nothing here invents: a lane exists because a process said proc.start or the kernel
// saw it (proc.state, cpu.run); what ran on a core, and when, is the kernel's `cpu.run`
// stretches (exact context switches, or sampled shares: `cpu.lanes` says which), never
// inferred from states. Nothing here knows a lesson by name either: the tracks drawn, the
// kind the sold track counts, the shapes of the lesson's own kinds and which of its threads
// are wiring are what the lesson declares (its spec, from GET /api/experiments); the track
// kinds and the standard library's helper threads are the page's facts (page_facts.js).

import { NameRegistry } from "./palette.js";
import { markShape } from "./marks.js";
import { Lane } from "./lane.js";
import { laneKey, stableOrder } from "./lane_order.js";
import { Objects } from "./objects.js";
import { addStretch } from "./on_core.js";
import { insertSorted } from "./time_sorted.js";
import { helperThread, trackKinds } from "./page_facts.js";

/** Kinds drawn as spans (or tracks) rather than as point marks on a process lane. */
const SPAN_KINDS = new Set(["proc.start", "proc.exit", "proc.state", "lock.wait", "lock.acquire",
  "lock.release", "join.wait", "join.done", "task.start", "task.end", "wait.start", "wait.end", "mgr.call"]);

/** How procscope's own processes name themselves on the events they make (app.events'
 * SERVER_PROC, and `procscope trace`'s reaping of a traced program's main). */
const PROCSCOPE_PROCS = new Set(["procscope", "procscope trace"]);

export class RunModel {
  /**
   * @param {object} run the run's JSON (GET /api/runs/{id}): its experiment and params
   * @param {number} coreCount core lanes to draw before any event names a core
   * @param {object} lesson the lesson as GET /api/experiments gives it; read here: `tracks`
   *   ({lock: {}, sold: {always, stock_param, counts}}), `marks` ({kind: shape}),
   *   `helper_threads` (names)
   */
  constructor(run, coreCount, lesson = {}, names = null) {
    this.run = run;
    // Colours by lane name: a registry of its own, or one shared with the run this one is
    // compared with (palette.js); `slot` is this run's place in it.
    this.names = names || new NameRegistry();
    this.slot = this.names.slot();
    this.unfolded = new Set(); // pids whose helper threads are shown as lanes of their own
    this.foldVersion = 0;
    this._rowsKey = null;
    this._rows = [];
    this.declared = lesson?.tracks || {};
    this.marks = lesson?.marks || {}; // the shapes of the lesson's own kinds (marks.js)
    this.helperThreads = lesson?.helper_threads || [];
    this.soldKind = this.declared.sold?.counts ?? null; // the kind the sold track counts
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
    this.nowShown = 0; // the latest now() returned: a live run's clock never steps back
    this.endT = null;
    this.end = null; // run.end's data
    this.t0Wall = null; // run.start's t0_wall (seconds since the epoch), if it says
    this.samplerHz = null; // the kernel sampler's rate, when it says (sampler.rate)
    this.resolutionMs = null; // ... and the time resolution that gives its core lanes
    this.resolutionRange = null; // [finest, coarsest] resolution_ms reported
    this.cpuLanes = null; // cpu.lanes: {mode: exact|sampled, detail}, and lost/broken at the end
    this.threadNames = new Map(); // tid -> the name the thread reports (events' `thread`)
    this.kinds = new Map();
    this.lock = { points: [], holds: [] }; // waiters +1/-1 points; hold spans of all lanes
    this.queue = { points: [] }; // {t, depth, kind, e}
    this.sold = { points: [] }; // {t, e}
    this.objects = new Objects(); // a traced program's Locks, Queues, ... (events with `obj`)
    this.version = 0; // bumps on every change; the renderer redraws when it moves
  }

  ensureCores(n) {
    // runs: cpu.run stretches sorted by t0 (= t); maxLen: the longest, for windowed search.
    while (this.cores.length < n) this.cores.push({ ticks: [], runs: [], maxLen: 0 });
  }

  /** The run's clock now: its end, or the newest event plus the time since it arrived. */
  now(perfNow) {
    if (this.endT !== null) return this.endT;
    if (!this.count) return 0;
    // Extrapolated from the newest event; a batch that arrives later than the one before
    // it (the server sends a batch per flush) would pull the estimate back: a paused clock
    // and the picture's edge would then step back and forth, so it only goes forward.
    const t = this.maxT + Math.max(0, perfNow - this.maxTAt) / 1000;
    if (t > this.nowShown) this.nowShown = t;
    return this.nowShown;
  }

  /** The tracks to draw now: declared by the lesson, and with something to show (data of
   * their own, or `always` once the run has begun: a stock line with no sale yet). */
  tracks() {
    const has = { lock: this.lock.points.length || this.lock.holds.length,
      queue: this.queue.points.length, sold: this.sold.points.length };
    return trackKinds().filter((name) => {
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
      // Among its siblings in the order of their tids (the order they were created).
      const at = parent ? this.lanes.lastIndexOf(parent) + 1 +
        this.lanes.filter((l) => l.pid === pid && l.tid && l.tid < tid).length : this.lanes.length;
      // A colour of its own (rows()): on the core lanes, threads taking turns on the GIL
      // must be told apart from each other, not just from other processes.
      this._nameThread(lane);
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
    lane.ppid = tid ? null : e.ppid ?? null;
    this.byKey.set(key, lane);
    return lane;
  }

  /** "main · thread-1": the process's name and the name the thread reported (its tid until it
   * reports one: only a thread that emits says its name). */
  _threadName(pid, tid) {
    const parent = this.byKey.get(pid);
    const own = this.threadNames.get(tid) || `t${tid}`;
    return parent ? `${parent.name} · ${own}` : own;
  }

  _renameThreads(pid) {
    for (const l of this.lanes) if (l.tid && l.pid === pid) this._nameThread(l);
  }

  _nameThread(lane) {
    lane.name = this._threadName(lane.pid, lane.tid);
  }

  /** Is this thread wiring (folded into its process's lane unless the user unfolds it): the
   * standard library's or one the lesson names as its helper (page_facts.helperThread)?
   * By the name it reported; a thread that never emitted (only the kernel saw it) or that
   * only reported reaping (multiprocessing's poll, from a helper thread) is one too. A
   * thread the lesson starts for what it shows keeps a lane of its own. */
  internalThread(lane) {
    if (!lane.tid) return false;
    const own = this.threadNames.get(lane.tid);
    if (!own) return true;
    if (helperThread(own, this.helperThreads)) return true;
    return lane.ownKinds.size > 0 && [...lane.ownKinds].every((k) => k === "proc.reap");
  }

  /** Show (or fold again) a process's helper threads as lanes of their own. */
  toggleFold(pid) {
    if (this.unfolded.has(pid)) this.unfolded.delete(pid);
    else this.unfolded.add(pid);
    this.foldVersion += 1;
  }

  /**
   * The rows the timeline draws, top to bottom: each process, then its threads that have
   * a lane of their own. A process's folded helper threads are in its `folded` (drawn in
   * its row); `helpers` counts them whether folded or not. Also gives every lane its colour
   * (by its place in this order: palette.NameRegistry), so a run alone and the same run
   * compared look the same.
   */
  rows() {
    const key = () => `${this.version}:${this.foldVersion}:${this.lanes.length}:${this.names.version}`;
    if (this._rowsKey === key()) return this._rows;
    const procs = stableOrder(this.lanes.filter((l) => !l.tid || !this.byKey.has(l.pid)));
    const threads = new Map(); // pid -> its thread lanes, in tid order (as this.lanes has them)
    for (const l of this.lanes) {
      if (!l.tid || !this.byKey.has(l.pid)) continue;
      if (!threads.has(l.pid)) threads.set(l.pid, []);
      threads.get(l.pid).push(l);
    }
    const rows = [];
    // Every lane but the main, in the order colours are handed out: the processes first,
    // then the threads (a thread folded or unfolded changes no process's colour).
    const named = [];
    const threadNames = [];
    for (const p of procs) {
      rows.push(p);
      if (p.tid || p.role !== "main") named.push(p.name);
      if (p.tid) continue;
      p.folded = [];
      p.helpers = 0;
      for (const l of threads.get(p.pid) || []) {
        threadNames.push(l.name);
        const internal = this.internalThread(l);
        if (internal) p.helpers += 1;
        const folded = internal && !this.unfolded.has(p.pid);
        l.foldedInto = folded ? p : null;
        if (folded) p.folded.push(l);
        else rows.push(l);
      }
    }
    this.names.arrange(this.slot, named.concat(threadNames));
    for (const l of this.lanes) l.color = this.names.color(l.name, l.tid ? null : l.role) || l.color;
    this._rowsKey = key();
    this._rows = rows;
    return rows;
  }

  /** Add a batch of events (in seq order). */
  ingest(events, perfNow) {
    for (const e of events) this._one(e, perfNow);
    if (!events.length) return;
    this.version += 1;
    this.rows(); // the lanes' colours, at once (the console colours its lines as they come)
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
      // The sampled core lanes' rate moved (it keeps to a CPU budget): say so on screen.
      this.samplerHz = data.hz;
      if (typeof data.resolution_ms === "number") {
        this.resolutionMs = data.resolution_ms;
        const [lo, hi] = this.resolutionRange || [Infinity, -Infinity];
        this.resolutionRange = [Math.min(lo, data.resolution_ms), Math.max(hi, data.resolution_ms)];
      }
      return;
    }
    if (kind === "cpu.lanes") {
      // How the core lanes were made (first), and what was lost of them (at the end).
      this.cpuLanes = { ...(this.cpuLanes || {}), ...data };
      return;
    }
    if (kind === "run.end") {
      this.endT = e.t;
      this.end = data;
      for (const lane of this.lanes) {
        // A thread never seen to end, in a process never seen to exit: it is not drawn as
        // alive past the last thing the kernel or the thread itself said about it.
        if (lane.tid && lane.exit === null && lane.lastSeen !== undefined) lane.exit = lane.lastSeen;
        lane.closeAll(lane.exit ?? e.t);
      }
      return;
    }
    if (kind === "obj.new") return this.objects.declare(data); // drawn once used
    if (kind === "prims.tally") return this.objects.addTally(data);
    if (kind === "print") this.prints.push(e);
    if (kind === this.soldKind) insertSorted(this.sold.points, { t: e.t, e });
    if ((kind === "queue.put" || kind === "queue.get" || kind === "queue.full" || kind === "queue.empty") &&
        (data.depth !== undefined || kind !== "queue.get") && data.obj === undefined) {
      insertSorted(this.queue.points, { t: e.t, depth: data.depth ?? null, kind, e });
    }
    if (kind === "proc.reap") {
      const child = this.byKey.get(data.child);
      if (child) child.reap = e.t;
    }
    // The server's own events (it reaps the main and adopted orphans) have no lane, nor
    // has `procscope trace` (it reaps a traced program's main): neither is the run's.
    if (e.pid === null || e.pid === undefined || PROCSCOPE_PROCS.has(e.proc)) return;

    // An event emitted from a thread says which (top-level tid and thread): its name is
    // the thread lane's, and the event goes on that lane.
    if (e.tid && e.thread && this.threadNames.get(e.tid) !== e.thread) {
      this.threadNames.set(e.tid, e.thread);
      const named = this.byKey.get(laneKey(e.pid, e.tid));
      if (named) this._nameThread(named);
    }
    const kernelTid = kind === "proc.state" || kind === "cpu.run" || kind === "thread.exit";
    const rawTid = kernelTid ? data.tid : e.tid;
    const tid = rawTid && rawTid !== e.pid ? rawTid : null;
    const key = laneKey(e.pid, tid);
    // When the event happened: a stretch's start, not the moment it was reported.
    const at = kind === "cpu.run" && typeof data.t0 === "number" ? data.t0 : e.t;
    if (tid && !this.byKey.has(key)) {
      // A report about a thread arriving after its process's proc.exit, from after that
      // exit: the thread is gone with its process; a lane for it would run on to the end.
      const parent = this.byKey.get(e.pid);
      if (parent && parent.exit !== null && at >= parent.exit) return;
      if (kind === "thread.exit") return; // never seen alive: nothing to end
    }
    const lane = this.lane(key, e.pid, tid, at === e.t ? e : { ...e, t: at });
    if (at < lane.start) lane.start = at;
    if (tid && !kernelTid) lane.ownKinds.add(kind);
    if (tid && kind !== "thread.exit") lane.lastSeen = Math.max(lane.lastSeen ?? -Infinity, e.t);
    if (e.cpu !== null && e.cpu !== undefined) this.ensureCores(e.cpu + 1);
    // A change of ppid is a re-parenting (an orphan adopted), except for a dying process
    // (X, where the kernel shows ppid 0): no process is ever re-parented to 0.
    const dying = kind === "proc.state" && data.state === "X";
    if (e.ppid !== null && e.ppid !== undefined && !tid && !dying && e.ppid !== 0) {
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
        this._renameThreads(lane.pid);
        break;
      case "proc.exit":
        if (lane.exit === null) {
          lane.exit = e.t;
          lane.exitcode = data.exitcode ?? null;
          lane.exitSource = data.source || null;
          lane.closeAll(e.t);
          // Threads end with their process at the latest (thread.exit says when one ends
          // before it).
          for (const other of this.lanes) {
            if (other.tid && other.pid === lane.pid && other.exit === null) {
              other.exit = e.t;
              other.closeAll(e.t);
            }
          }
        }
        break;
      case "thread.exit":
        // The sampler saw the thread gone: its lane ends there (or at its last stretch, if
        // that was reported later still).
        if (lane.exit === null) {
          lane.exit = Math.max(e.t, lane.lastSeen ?? -Infinity);
          lane.closeAll(lane.exit);
        }
        return;
      case "proc.state":
        this._state(lane, e, data);
        return; // states are drawn as the lane's state (Z, re-parenting), not as marks
      case "cpu.run":
        addStretch(this, lane, e, data);
        return; // drawn on the core lanes and as the lane's on-core strip, not as a mark
      default:
        this.objects.fold(this.lock, lane, e, data); // lock.*, join.*, wait.*, task.*: spans.js
        break;
    }
    if (!SPAN_KINDS.has(kind) || kind === "proc.exit" || kind === "proc.start") {
      insertSorted(lane.marks, e);
      const shape = markShape(kind, this.marks);
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
    if (prev === null && lane.start === null) lane.start = e.t;
  }
}
