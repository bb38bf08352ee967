// Objects (static/objects.js) through RunModel: a traced program's Locks, Queues, Events,
// Pools and proxies, from the events its primitives emit with `obj` (docs/api.md).
//
// Runs under node --test. Each test feeds the events a traced program sends, in seq order,
// and checks what the page would draw: the tracks and their names, the spans on the lanes.

import { test } from "node:test";
import assert from "node:assert/strict";

import "./facts.js";
import { RunModel } from "../../static/run_model.js";
import { markShape } from "../../static/marks.js";

const PROGRAM = { id: "9", experiment: null, params: {}, program: { name: "prog.py" } };

/** A model fed with events given as [kind, t, pid, data, fields]; seq is 1, 2, 3, ... */
function model(events) {
  const m = new RunModel(PROGRAM, 2, {});
  m.ingest(events.map(([kind, t, pid, data = {}, fields = {}], i) => ({
    seq: i + 1, kind, t, pid, ppid: null, cpu: null, proc: null, data, ...fields,
  })), 0);
  return m;
}

const start = (t, pid, name, role = "child") => ["proc.start", t, pid, { name, role }, { ppid: 1 }];
const made = (obj, type, name, extra = {}) => ["obj.new", 0, 100, { obj, type, name, where: "prog.py:3", ...extra }];
const spans = (m, pid) => m.byKey.get(pid).spans.map((s) => [s.kind, s.t0, s.t1, s.label]);
const names = (m) => m.objects.tracks().map((o) => m.objects.nameOf(o));

test("a Lock: its track named as the program names it, holder bands and waiters", () => {
  const m = model([start(0, 100, "MainProcess", "main"), start(0, 101, "worker-1"), start(0, 102, "worker-2"),
    made("sem1", "Lock", "lock"), made("sem2", "Lock", "unused"),
    ["lock.acquire", 0.1, 101, { obj: "sem1" }],
    ["lock.wait", 0.2, 102, { obj: "sem1" }],
    ["lock.release", 0.5, 101, { obj: "sem1" }],
    ["lock.acquire", 0.5, 102, { obj: "sem1", waited: 0.3 }],
    ["lock.release", 0.7, 102, { obj: "sem1" }]]);
  assert.deepEqual(names(m), ["lock"]); // an object never used has no track
  const lock = m.objects.byId.get("sem1");
  assert.equal(m.objects.trackOf(lock), "lock");
  assert.deepEqual(lock.holds.map((s) => [s.lane.pid, s.t0, s.t1, s.slot]), [[101, 0.1, 0.5, 0], [102, 0.5, 0.7, 0]]);
  assert.deepEqual(lock.waiters.map((p) => [p.t, p.delta]), [[0.2, 1], [0.5, -1]]);
  assert.deepEqual(spans(m, 102), [["wait", 0.2, 0.5, "waiting for lock"], ["hold", 0.5, 0.7, "holding lock"]]);
  // The lesson's one lock track is not fed by a program's objects; no lesson track is drawn.
  assert.deepEqual(m.lock.holds, []);
  assert.deepEqual(m.tracks(), []);
  // Drawn as spans and on the track, not as marks; obj.new is no mark either.
  assert.deepEqual(m.byKey.get(100).marks.map((e) => e.kind), ["proc.start"]);
  assert.deepEqual(m.byKey.get(102).marks.map((e) => e.kind), ["proc.start"]);
});

test("an RLock taken again by its holder is one band; a timeout ends the wait with a mark", () => {
  const m = model([start(0, 101, "a"), start(0, 102, "b"), made("r", "RLock", "rlock"),
    ["lock.acquire", 0.1, 101, { obj: "r" }], ["lock.acquire", 0.15, 101, { obj: "r" }],
    ["lock.wait", 0.2, 102, { obj: "r" }],
    ["lock.timeout", 0.3, 102, { obj: "r", timeout: 0.1, waited: 0.1 }],
    ["lock.release", 0.4, 101, { obj: "r" }], ["lock.release", 0.5, 101, { obj: "r" }]]);
  assert.deepEqual(spans(m, 101), [["hold", 0.1, 0.5, "holding rlock"]]);
  assert.deepEqual(spans(m, 102), [["wait", 0.2, 0.3, "waiting for rlock → timed out"]]);
  assert.deepEqual(m.byKey.get(102).marks.map((e) => e.kind), ["proc.start", "lock.timeout"]);
  assert.equal(markShape("lock.timeout"), "downAlert");
});

test("a Semaphore: its value, and as many bands at once as holders, each in its row", () => {
  const m = model([start(0, 101, "a"), start(0, 102, "b"), start(0, 103, "c"),
    made("s", "Semaphore", "sem", { value: 2 }),
    ["lock.acquire", 0.1, 101, { obj: "s", value: 1 }], ["lock.acquire", 0.2, 102, { obj: "s", value: 0 }],
    ["lock.wait", 0.25, 103, { obj: "s" }],
    ["lock.release", 0.3, 101, { obj: "s", value: 1 }], ["lock.acquire", 0.3, 103, { obj: "s", value: 0 }],
    // Released by a process that did not take it (a semaphore as a signal): the oldest band ends.
    ["lock.release", 0.6, 101, { obj: "s", value: 1 }]]);
  const sem = m.objects.byId.get("s");
  assert.equal(sem.value0, 2);
  assert.deepEqual(sem.values.map((p) => [p.t, p.value]), [[0.1, 1], [0.2, 0], [0.3, 1], [0.3, 0], [0.6, 1]]);
  assert.deepEqual(sem.holds.map((s) => [s.lane.pid, s.t0, s.t1, s.slot]),
    [[101, 0.1, 0.3, 0], [102, 0.2, 0.6, 1], [103, 0.3, null, 0]]);
});

test("a process that dies waiting is a waiter no more; run.end closes what is held", () => {
  const m = model([start(0, 101, "a"), start(0, 102, "b"), made("l", "Lock", "lock"),
    ["lock.acquire", 0.1, 101, { obj: "l" }], ["lock.wait", 0.2, 102, { obj: "l" }],
    ["proc.exit", 0.4, 102, { exitcode: -9, source: "self" }],
    ["run.end", 0.9, null, { status: "succeeded" }]]);
  const lock = m.objects.byId.get("l");
  assert.deepEqual(lock.waiters.map((p) => [p.t, p.delta]), [[0.2, 1], [0.4, -1]]);
  assert.deepEqual(lock.holds.map((s) => [s.t0, s.t1]), [[0.1, 0.9]]);
});

test("queues: depth as each put and get says it; a SimpleQueue's counted; Full and Empty marked", () => {
  const m = model([start(0, 101, "p"), made("q", "Queue", "q", { maxsize: 2 }), made("sq", "SimpleQueue", "sq"),
    ["queue.put", 0.1, 101, { obj: "q", depth: 1, item: "'a'" }], ["queue.put", 0.2, 101, { obj: "q", depth: 2 }],
    ["queue.full", 0.3, 101, { obj: "q", depth: 2, raised: "queue.Full" }],
    ["queue.get", 0.4, 101, { obj: "q", depth: 1 }],
    ["queue.put", 0.5, 101, { obj: "sq" }], ["queue.put", 0.6, 101, { obj: "sq" }], ["queue.get", 0.7, 101, { obj: "sq" }],
    ["queue.task_done", 0.8, 101, { obj: "q", unfinished: 1 }]]);
  assert.deepEqual(names(m), ["q", "sq"]);
  assert.deepEqual(m.objects.byId.get("q").depth.map((p) => [p.t, p.depth, p.kind]),
    [[0.1, 1, "queue.put"], [0.2, 2, "queue.put"], [0.3, 2, "queue.full"], [0.4, 1, "queue.get"]]);
  assert.deepEqual(m.objects.byId.get("sq").depth.map((p) => p.depth), [1, 2, 1]);
  assert.deepEqual(m.queue.points, []); // the lesson's queue track: only events without `obj`
  assert.deepEqual(m.byKey.get(101).marks.map((e) => e.kind), ["proc.start", "queue.put", "queue.put",
    "queue.full", "queue.get", "queue.put", "queue.put", "queue.get", "queue.task_done"]);
});

test("an Event: set and clear as a step, its waiters from wait.start / wait.end", () => {
  const m = model([start(0, 101, "a"), start(0, 102, "b"), made("e", "Event", "done"),
    ["wait.start", 0.1, 102, { obj: "e", call: "done.wait()", waits_for: "done to be set" }],
    ["event.set", 0.3, 101, { obj: "e" }],
    ["wait.end", 0.3, 102, { obj: "e", waited: 0.2 }],
    ["event.clear", 0.5, 101, { obj: "e" }]]);
  const ev = m.objects.byId.get("e");
  assert.equal(m.objects.trackOf(ev), "event");
  assert.deepEqual(ev.states.map((p) => [p.t, p.set]), [[0.3, true], [0.5, false]]);
  assert.deepEqual(ev.waiters.map((p) => [p.t, p.delta]), [[0.1, 1], [0.3, -1]]);
  assert.deepEqual(spans(m, 102), [["wait", 0.1, 0.3, "in done.wait(): waiting for done to be set"]]);
  assert.deepEqual(m.byKey.get(101).marks.map((e) => e.kind), ["proc.start", "event.set", "event.clear"]);
  assert.equal(markShape("event.set"), "flag");
});

test("objects without a track still count: barrier, pipe, condition's notify, pool, manager", () => {
  const m = model([start(0, 100, "MainProcess", "main"), start(0, 101, "ForkPoolWorker-1", "worker"),
    made("b", "Barrier", "barrier", { parties: 2 }), made("c1", "Connection", "a", { peer: "c2" }),
    made("p", "Pool", "pool"), made("d", "Proxy", "d", { typeid: "dict" }),
    ["barrier.pass", 0.1, 100, { obj: "b", parties: 2 }], ["pipe.send", 0.2, 100, { obj: "c1", bytes: 20 }],
    ["task.submit", 0.3, 100, { pool: "p", task: 0, fn: "square", item: "3", mode: "map" }],
    ["task.start", 0.35, 101, { pool: "p", task: 0, index: 0, label: "square(3)" }],
    ["task.end", 0.4, 101, { pool: "p", task: 0, index: 0 }],
    ["task.result", 0.45, 100, { pool: "p", task: 0 }],
    ["mgr.call", 0.6, 100, { obj: "d", method: "get", waited: 0.05 }]]);
  assert.deepEqual(names(m), []); // none of them has a track
  assert.deepEqual(spans(m, 101), [["task", 0.35, 0.4, "square(3)"]]);
  const call = m.byKey.get(100).spans[0];
  assert.deepEqual([call.kind, call.t0, call.t1, call.label], ["call", 0.6 - 0.05, 0.6, "d.get()"]);
  assert.deepEqual(m.byKey.get(100).marks.map((e) => e.kind), ["proc.start", "barrier.pass", "pipe.send",
    "task.submit", "task.result"]);
  for (const id of ["b", "c1", "p", "d"]) assert.equal(m.objects.byId.get(id).used, true, id);
  assert.equal(markShape("barrier.pass"), "bar");
});

test("an object with no obj.new is TYPE #n by first appearance; a Value's lock is NAME.get_lock()", () => {
  const m = model([start(0, 101, "a"), made("v", "Value", "counter"), made("vl", "RLock", "lock of counter", { of: "v" }),
    made("c", "Condition", "cond"), made("cl", "RLock", "lock of cond", { of: "c" }),
    made("m", "Manager", "manager"), made("ml", "Lock", "lock of manager", { of: "m" }),
    ["wait.start", 0.05, 101, { obj: "c", call: "cond.wait()" }], ["wait.end", 0.06, 101, { obj: "c" }],
    ["lock.acquire", 0.07, 101, { obj: "ml" }],
    ["queue.put", 0.1, 101, { obj: "x2", depth: 1 }], ["lock.acquire", 0.2, 101, { obj: "x1" }],
    ["lock.acquire", 0.3, 101, { obj: "vl" }], ["lock.acquire", 0.4, 101, { obj: "cl" }],
    ["queue.get", 0.5, 101, { obj: "x3", depth: 0 }]]);
  // Tracks in the order the program made the objects (then those it never said it made).
  // A Condition has no track of its own: its lock's is named after it, of its type.
  assert.deepEqual(names(m), ["counter.get_lock()", "cond", "manager's lock", "Queue #1", "Lock #1", "Queue #2"]);
  assert.deepEqual(m.objects.tracks().map((o) => m.objects.typeOf(o)),
    ["RLock", "Condition", "Lock", "Queue", "Lock", "Queue"]);
  assert.equal(m.objects.byId.get("c").used, true);
});

test("a JoinableQueue's join() is labelled with the call as the program wrote it", () => {
  const m = model([start(0, 100, "MainProcess", "main"), made("j", "JoinableQueue", "jobs"),
    ["join.wait", 0.1, 100, { obj: "j", what: "jobs.join()", name: "jobs" }],
    ["join.done", 0.4, 100, { obj: "j", what: "jobs.join()", name: "jobs" }]]);
  assert.deepEqual(spans(m, 100), [["join", 0.1, 0.4, "waiting in jobs.join()"]]);
  assert.deepEqual(names(m), ["jobs"]);
});

test("prims.tally: what was counted, not drawn, said per object", () => {
  const m = model([start(0, 101, "a"), made("l", "Lock", "lock"),
    ["lock.acquire", 0.1, 101, { obj: "l" }], ["lock.release", 0.2, 101, { obj: "l" }],
    ["prims.tally", 0.3, 101, { obj: "l", kinds: { "lock.release": 12000, "lock.acquire": 12000 }, since: 0.1 }],
    ["prims.tally", 0.4, 101, { obj: "l", kinds: { "lock.acquire": 500 }, since: 0.3 }],
    ["prims.tally", 0.5, 101, { obj: "q", kinds: { "queue.full": 3, "queue.get": 1 }, since: 0.1 }]]);
  assert.deepEqual(m.objects.tallies(), ["lock: 12,500 acquisitions, 12,000 releases counted, not drawn",
    "Queue #1: 1 get, 3 × queue.full counted, not drawn"]);
});

test("a lesson's hand-written lock and queue events (no obj) draw as they always did", () => {
  const m = model([start(0, 101, "buyer-1"), ["lock.wait", 0.1, 101], ["lock.acquire", 0.2, 101],
    ["queue.put", 0.3, 101, { depth: 1 }], ["lock.release", 0.4, 101]]);
  assert.deepEqual(spans(m, 101), [["wait", 0.1, 0.2, "waiting for the lock"], ["hold", 0.2, 0.4, "holding the lock"]]);
  assert.deepEqual(m.queue.points.map((p) => p.depth), [1]);
  assert.equal(m.objects.byId.size, 0);
});
