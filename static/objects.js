// A traced program's own objects (its Locks, Queues, Events, Pools, Pipes, ...): what each
// did, from the events its primitives emit with `obj` (docs/api.md, "Event kinds").
//
// Runs in the browser (and under node --test: tests/js/objects.test.js). Pure data, as
// run_model.js is: one record per object, named as the program names it (`obj.new`), and
// on it what its track draws: a lock's holder bands, its waiters and a semaphore's value, a
// queue's depth, an Event's set and clear. The spans on the lanes ("waiting for lock",
// "holding lock", "d.get()") go on the lanes as spans.js's do. An event without `obj` (a
// lesson's hand-written lock.* and queue.*) is not this module's: run_model.js keeps
// drawing those on the lesson's one lock and queue track, as it always has.

import { insertSorted } from "./time_sorted.js";
import { foldSpan, opened } from "./spans.js";
import { t } from "./i18n.js";

/** What an object's track draws, by its type; a type not here has no track (a Barrier, a
 * Pipe's end, a Pool, a Manager's proxy: their marks and bars are on the lanes; a Condition:
 * its lock has the track, named after it, and its wait() and notify() are on the lanes). */
const TRACK_OF_TYPE = {
  Lock: "lock", RLock: "lock", Semaphore: "lock", BoundedSemaphore: "lock",
  Queue: "queue", JoinableQueue: "queue", SimpleQueue: "queue", Event: "event",
};

/** The type an object seen before its `obj.new` (or without one) is taken for, by the
 * first kind it is seen in ("TYPE #n", docs/api.md). */
function typeOfKind(kind) {
  const family = kind.split(".")[0];
  return { lock: "Lock", queue: "Queue", event: "Event", cond: "Condition", barrier: "Barrier",
    pipe: "Connection", mgr: "Proxy", task: "Pool" }[family] || "object";
}


/** The kinds a tally names first, in this order (then any other, by name). */
const TALLY_ORDER = ["lock.acquire", "lock.release", "queue.put", "queue.get", "pipe.send", "pipe.recv"];

/** What a tally's count is of, in words: "12,000 acquisitions", "1 release". */
function counted(kind, n) {
  const num = n.toLocaleString("en-US");
  const one = n === 1;
  switch (kind) {
    case "lock.acquire": return one ? t("1 acquisition") : t("%(n)s acquisitions", { n: num });
    case "lock.release": return one ? t("1 release") : t("%(n)s releases", { n: num });
    case "queue.put": return one ? t("1 put") : t("%(n)s puts", { n: num });
    case "queue.get": return one ? t("1 get") : t("%(n)s gets", { n: num });
    case "pipe.send": return one ? t("1 send") : t("%(n)s sends", { n: num });
    case "pipe.recv": return one ? t("1 receive") : t("%(n)s receives", { n: num });
    default: return t("%(n)s × %(kind)s", { n: num, kind });
  }
}

function byTallyOrder([a], [b]) {
  const rank = (k) => (TALLY_ORDER.includes(k) ? TALLY_ORDER.indexOf(k) : TALLY_ORDER.length);
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

export class Objects {
  constructor() {
    this.byId = new Map(); // obj -> its record, in order of first sight
    this.perType = new Map(); // type -> objects of it seen so far (for "TYPE #n")
    this.open = new Map(); // `${lane key} ${obj}` -> {wait, hold, depth}: a lane's open spans on it
  }

  /** The record of object `id` (made on first sight: `type` guessed from the kind). */
  get(id, kind) {
    let o = this.byId.get(id);
    if (o) return o;
    o = { id, type: typeOfKind(kind), name: null, where: null, of: null, declared: false,
      used: false, firstT: null, holds: [], openHolds: new Set(), slots: [], slotHolds: [], waiters: [], values: [], depth: [],
      states: [], calls: 0, counts: new Map(), tally: new Map(), maxsize: null, value0: null };
    this.byId.set(id, o);
    return o;
  }

  /** obj.new: the object as the program made it (its name, type, where). */
  declare(data) {
    if (data.obj === undefined || data.obj === null) return;
    const o = this.get(String(data.obj), "");
    Object.assign(o, { type: data.type || o.type, name: data.name || o.name, where: data.where || null,
      of: data.of !== undefined && data.of !== null ? String(data.of) : null, declared: true,
      maxsize: data.maxsize ?? null, value0: typeof data.value === "number" ? data.value : null,
      parties: data.parties ?? null, typeid: data.typeid ?? null, peer: data.peer ?? null });
  }

  /** prims.tally: events of an object counted, not sent one by one (past the rate). */
  addTally(data) {
    if (data.obj === undefined || data.obj === null || !data.kinds) return;
    const o = this.get(String(data.obj), Object.keys(data.kinds)[0] || "");
    for (const [kind, n] of Object.entries(data.kinds)) o.tally.set(kind, (o.tally.get(kind) || 0) + Number(n));
    this._use(o, null);
  }

  /** The name the page shows: a lock that belongs to an object as the program reaches it
   * ("counter.get_lock()", a Condition's by the Condition's name), else the program's
   * name, else "TYPE #n" by order of first appearance. */
  nameOf(o) {
    if (typeof o === "string") o = this.byId.get(o);
    if (!o) return "?";
    const owner = o.of ? this.byId.get(o.of) : null;
    if (owner) {
      const base = this.nameOf(owner);
      if (owner.type === "Value" || owner.type === "Array") return `${base}.get_lock()`;
      return owner.type === "Condition" ? base : t("%(name)s's lock", { name: base });
    }
    if (o.name) return o.name;
    if (!this.perType.has(o.type)) this.perType.set(o.type, []);
    const same = this.perType.get(o.type);
    if (!same.includes(o)) same.push(o);
    return `${o.type} #${same.indexOf(o) + 1}`;
  }

  _use(o, e) {
    if (!o.used) {
      o.used = true;
      o.firstT = e ? e.t : null;
      this.nameOf(o); // numbered ("Lock #2") in the order first used
    }
    if (e) o.counts.set(e.kind, (o.counts.get(e.kind) || 0) + 1);
  }

  /** The used objects that have a track, in the order the program made them (obj.new),
   * those it never said it made after them as first seen. */
  tracks() {
    return [...this.byId.values()].filter((o) => o.used && TRACK_OF_TYPE[o.type]);
  }

  /** The type a track says it is of: a Condition's lock is the Condition's, as `with cond:`. */
  typeOf(o) {
    const owner = o.of ? this.byId.get(o.of) : null;
    return owner?.type === "Condition" ? "Condition" : o.type;
  }

  /** What kind of track an object has ("lock", "queue", "event"), or null. */
  trackOf(o) {
    return TRACK_OF_TYPE[o.type] || null;
  }

  /** "lock: 12,000 acquisitions counted, not drawn", one line per object with a tally. */
  tallies() {
    const lines = [];
    for (const o of this.byId.values()) {
      if (o.tally.size) lines.push(t("%(name)s: %(what)s counted, not drawn", { name: this.nameOf(o), what: this.tallyOf(o) }));
    }
    return lines;
  }

  /** What was counted of `o` and not sent, in words ("12,000 acquisitions, 1 release"); "". */
  tallyOf(o) {
    return [...o.tally].sort(byTallyOrder).map(([kind, n]) => counted(kind, n)).join(", ");
  }

  /**
   * One event of a lane that may open or close a span: an object's (it has `obj`, or a
   * pool's task its `pool`) drawn here; anything else as spans.js draws it (`lock`: the
   * model's one lesson lock track, for events without `obj`).
   */
  fold(lock, lane, e, data) {
    const id = data.obj ?? (e.kind.startsWith("task.") ? data.pool : undefined);
    if (id === undefined || id === null) return foldSpan(lock, lane, e, data);
    const o = this.get(String(id), e.kind);
    this._use(o, e);
    const key = `${lane.key} ${o.id}`;
    if (!this.open.has(key)) this.open.set(key, { wait: null, hold: null, depth: 0 });
    const mine = this.open.get(key);
    const name = this.nameOf(o);
    if (typeof data.value === "number" && e.kind.startsWith("lock.")) insertSorted(o.values, { t: e.t, value: data.value });
    switch (e.kind) {
      case "lock.wait":
        if (!mine.wait) mine.wait = this._waiting(o, lane, e, opened(lane, "wait", e, t("waiting for %(name)s", { name })));
        break;
      case "lock.acquire":
      case "lock.timeout":
        this._stopWaiting(o, lane, mine, e, e.kind === "lock.timeout" ? ` → ${t("timed out")}` : "");
        if (e.kind === "lock.timeout") break;
        mine.depth += 1; // an RLock taken again by its holder: one band, from the first
        if (mine.depth === 1) this._hold(o, lane, mine, e, name);
        break;
      case "lock.release": {
        // Released by another process than took it (a Semaphore used as a signal, a Lock
        // released by a helper): the band that ends is the oldest still open.
        const holder = mine.hold ? mine : [...o.openHolds][0]?.owner;
        if (!holder) break;
        holder.depth = Math.max(0, holder.depth - 1);
        if (holder.depth === 0 || holder !== mine) this._release(o, holder, e);
        break;
      }
      case "wait.start":
        foldSpan(lock, lane, e, data);
        if (lane.open.wait) mine.wait = this._waiting(o, lane, e, lane.open.wait);
        break;
      case "wait.end":
        foldSpan(lock, lane, e, data);
        this._stopWaiting(o, lane, mine, e, "");
        break;
      case "join.wait": // a JoinableQueue's join(): the call as the program wrote it
        foldSpan(lock, lane, e, data);
        if (data.what) lane.spans[lane.spans.length - 1].label = t("waiting in %(call)s", { call: data.what });
        break;
      case "queue.put": case "queue.get": case "queue.full": case "queue.empty": {
        // SimpleQueue says no depth: its puts less its gets are the items in it.
        const last = o.depth.length ? o.depth[o.depth.length - 1].depth : 0;
        const step = e.kind === "queue.put" ? 1 : e.kind === "queue.get" ? -1 : 0;
        const depth = typeof data.depth === "number" ? data.depth : Math.max(0, last + step);
        insertSorted(o.depth, { t: e.t, depth, kind: e.kind, e });
        break;
      }
      case "event.set": case "event.clear":
        insertSorted(o.states, { t: e.t, set: e.kind === "event.set", e, lane });
        break;
      case "mgr.call": {
        // The round trip to the manager's process: a bar [t - waited, t] on the caller's lane.
        const t0 = e.t - Math.max(0, Number(data.waited) || 0);
        const span = { kind: "call", t0, t1: e.t, t: t0, label: `${name}.${data.method || "?"}()`, e0: e, e1: e };
        insertSorted(lane.spans, span);
        o.calls += 1;
        break;
      }
      default:
        foldSpan(lock, lane, e, data); // task.start / task.end of a pool: its labelled bar
        break;
    }
    return undefined;
  }

  /** The lane waits on `o` from `e` in `span`: a waiter more on o's track until it ends. */
  _waiting(o, lane, e, span) {
    insertSorted(o.waiters, { t: e.t, delta: +1, lane });
    lane.open.objects.add(span);
    // Its process ended while it waited (Lane.closeAll): a waiter less there.
    span.onEnd = (at) => insertSorted(o.waiters, { t: at, delta: -1, lane });
    return span;
  }

  _stopWaiting(o, lane, mine, e, outcome) {
    const span = mine.wait;
    if (!span) return;
    mine.wait = null;
    span.onEnd = null;
    lane.open.objects.delete(span);
    insertSorted(o.waiters, { t: e.t, delta: -1, lane });
    if (span.t1 === null) {
      span.t1 = e.t;
      span.e1 = e;
    }
    if (outcome) span.label += outcome;
  }

  /** `lane` holds `o` from `e`: a band on o's track, in the first row free then (a
   * Semaphore has as many holders at once as its value allows; a Lock one). */
  _hold(o, lane, mine, e, name) {
    let slot = o.slots.findIndex((s) => s.t1 !== null && s.t1 <= e.t);
    if (slot < 0) slot = o.slots.length;
    const hold = opened(lane, "hold", e, t("holding %(name)s", { name }), { lane, slot, owner: mine });
    o.slots[slot] = hold; // the row's newest band
    (o.slotHolds[slot] ||= []).push(hold); // each row's bands, in time order
    o.holds.push(hold);
    o.openHolds.add(hold);
    lane.open.objects.add(hold);
    hold.onEnd = () => o.openHolds.delete(hold); // its process ended holding it
    mine.hold = hold;
  }

  _release(o, holder, e) {
    const hold = holder.hold;
    holder.hold = null;
    holder.depth = 0;
    if (!hold) return;
    o.openHolds.delete(hold);
    hold.lane.open.objects.delete(hold);
    if (hold.t1 === null) {
      hold.t1 = e.t;
      hold.e1 = e;
    }
  }
}
