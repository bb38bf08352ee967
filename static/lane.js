// One lane of a run: a process (or one of its threads) with its life, its spans (waiting,
// holding, joining, in a task), its marks and its time on the cores.
//
// Runs in the browser (and under node --test). Pure data: run_model.js fills it from the
// events, process_lanes.js draws it.

import { processColor } from "./palette.js";

export class Lane {
  constructor(key, pid, tid, index) {
    this.key = key;
    this.pid = pid;
    this.tid = tid; // a thread lane has the thread's id here
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
    this.onCpu = []; // cpu.run stretches {t (= t0), t0, t1, share, core}, sorted by t0
    this.onCpuMax = 0; // the longest of them (to search the visible window)
    this.lastSeen = undefined; // a thread lane: the newest report of it (event or stretch end)
    this.reparents = []; // {t, from, to, e}
    // objects: a traced program's object spans still open (objects.js), each with its onEnd
    this.open = { lock: null, task: null, wait: null, join: new Map(), objects: new Set() };
    this.ownKinds = new Set(); // a thread lane: the kinds of the events it emitted itself
    this.folded = []; // a process lane: its helper threads drawn in its row (RunModel.rows)
    this.helpers = 0; // ... and how many helper threads it has, folded or not
    this.foldedInto = null; // a folded helper thread: the process lane it is drawn in
    this.state = null;
  }

  /** The process ended (or the run did) at t: whatever it was still doing ends there. */
  closeAll(t) {
    const open = [this.open.lock, this.open.task, this.open.wait, ...this.open.join.values(), ...this.open.objects];
    for (const span of open) {
      if (span && span.t1 === null) {
        span.t1 = t;
        span.onEnd?.(t);
      }
    }
    this.open.lock = this.open.task = this.open.wait = null;
    this.open.join.clear();
    this.open.objects.clear();
  }
}
