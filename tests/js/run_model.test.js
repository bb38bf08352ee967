// RunModel (static/run_model.js): what the timeline draws, built from events.
//
// Runs under node --test (no browser: the model is pure data). Each test feeds events the
// way the stream delivers them (seq order) and checks lanes, spans, tracks and counters.

import { test } from "node:test";
import assert from "node:assert/strict";

import "./facts.js";
import { RunModel } from "../../static/run_model.js";
import { firstAtOrAfter, insertSorted } from "../../static/time_sorted.js";
import { markShape } from "../../static/marks.js";
import { onCoreSeconds, paintOnCore } from "../../static/on_core.js";

const RUN = { id: "1", experiment: "ticket_rush", params: { tickets: 3, n: 5 } };
const TICKET_TRACKS = { lock: { always: false, stock_param: null, counts: null },
  sold: { always: true, stock_param: "tickets", counts: "ticket.sold" } };
// A lesson as GET /api/experiments gives it: what the model reads of it.
const TICKET = { tracks: TICKET_TRACKS, marks: { "ticket.sold": "star" }, helper_threads: [] };

/** A model fed with events given as [kind, t, pid, fields]; seq is 1, 2, 3, ... */
function model(events, { run = RUN, lesson = {}, cores = 2, firstSeq = 1 } = {}) {
  const m = new RunModel(run, cores, lesson);
  m.ingest(events.map(([kind, t, pid, fields = {}], i) => ({
    seq: firstSeq + i, kind, t, pid, ppid: null, cpu: null, proc: null, data: {}, ...fields,
  })), 0);
  return m;
}

const start = (t, pid, ppid, name, role = "child") =>
  ["proc.start", t, pid, { ppid, data: { name, role } }];
const exit = (t, pid, exitcode = 0) => ["proc.exit", t, pid, { data: { exitcode, source: "self" } }];

test("a lane per process, from its proc.start to its proc.exit", () => {
  const m = model([start(0, 100, 1, "MainProcess", "main"), start(0.1, 101, 100, "buyer-1"),
    start(0.2, 102, 100, "buyer-2"), exit(0.5, 101), exit(0.6, 102, -15)]);
  assert.deepEqual(m.lanes.map((l) => [l.pid, l.name, l.role, l.ppid, l.start, l.exit, l.exitcode]), [
    [100, "MainProcess", "main", 1, 0, null, null],
    [101, "buyer-1", "child", 100, 0.1, 0.5, 0],
    [102, "buyer-2", "child", 100, 0.2, 0.6, -15],
  ]);
  assert.equal(m.lanes[0].color, "#4a4a4a"); // the main is grey, children take hues
  assert.notEqual(m.lanes[1].color, m.lanes[2].color);
  assert.equal(m.byKey.get(101), m.lanes[1]);
});

test("lanes are in order of first sight in time, whatever the arrival order", () => {
  // 102 started before 101, but its proc.start was read after 101's.
  const m = model([start(0, 100, 1, "main", "main"), start(0.3, 101, 100, "late"),
    start(0.1, 102, 100, "early")]);
  assert.deepEqual(m.lanes.map((l) => l.name), ["main", "early", "late"]);
});

test("lock.wait, lock.acquire, lock.release: a wait span, then a hold span, and the waiters", () => {
  const m = model([start(0, 101, 100, "buyer-1"), start(0, 102, 100, "buyer-2"),
    ["lock.wait", 0.1, 101], ["lock.acquire", 0.1, 101],
    ["lock.wait", 0.2, 102], ["lock.release", 0.4, 101], ["lock.acquire", 0.4, 102],
    ["lock.release", 0.7, 102]]);
  const spans = (pid) => m.byKey.get(pid).spans.map((s) => [s.kind, s.t0, s.t1]);
  assert.deepEqual(spans(101), [["wait", 0.1, 0.1], ["hold", 0.1, 0.4]]);
  assert.deepEqual(spans(102), [["wait", 0.2, 0.4], ["hold", 0.4, 0.7]]);
  assert.deepEqual(m.lock.points.map((p) => [p.t, p.delta]), [[0.1, 1], [0.1, -1], [0.2, 1], [0.4, -1]]);
  assert.deepEqual(m.lock.holds.map((s) => [s.lane.pid, s.t0, s.t1]), [[101, 0.1, 0.4], [102, 0.4, 0.7]]);
  assert.equal(m.byKey.get(101).spans[1].label, "holding the lock");
});

test("a span still open when its process exits ends there; run.end ends the rest", () => {
  const m = model([start(0, 101, 100, "a"), start(0, 102, 100, "b"),
    ["lock.wait", 0.1, 101], ["lock.acquire", 0.2, 102], exit(0.3, 101),
    ["run.end", 0.9, null, { data: { status: "succeeded", dropped: 0 } }]]);
  assert.deepEqual(m.byKey.get(101).spans.map((s) => s.t1), [0.3]);
  assert.deepEqual(m.byKey.get(102).spans.map((s) => s.t1), [0.9]);
  assert.equal(m.endT, 0.9);
  assert.equal(m.end.status, "succeeded");
  assert.equal(m.now(123456), 0.9); // an ended run's clock stops at its end
});

test("join.wait / join.done and task.start / task.end are spans, matched per child", () => {
  const m = model([start(0, 100, 1, "main", "main"),
    ["join.wait", 1, 100, { data: { child: 101, name: "w1" } }],
    ["join.wait", 1, 100, { data: { child: 102, name: "w2" } }],
    ["join.done", 2, 100, { data: { child: 102 } }], ["join.done", 3, 100, { data: { child: 101 } }],
    ["task.start", 4, 100, { data: { task: 7 } }], ["task.end", 5, 100]]);
  assert.deepEqual(m.lanes[0].spans.map((s) => [s.kind, s.t0, s.t1, s.label]), [
    ["join", 1, 3, "in join() of w1"], ["join", 1, 2, "in join() of w2"], ["task", 4, 5, "task 7"]]);
});

test("queue depth: a point per put, full and empty, and per get that says its depth", () => {
  const m = model([start(0, 101, 100, "p"),
    ["queue.put", 0.1, 101, { data: { depth: 1 } }], ["queue.put", 0.2, 101, { data: { depth: 2 } }],
    ["queue.get", 0.3, 101, { data: { depth: 1 } }], ["queue.get", 0.35, 101, { data: {} }],
    ["queue.full", 0.4, 101, { data: {} }], ["queue.empty", 0.5, 101, { data: { depth: 0 } }]]);
  assert.deepEqual(m.queue.points.map((p) => [p.t, p.kind, p.depth]), [
    [0.1, "queue.put", 1], [0.2, "queue.put", 2], [0.3, "queue.get", 1],
    [0.4, "queue.full", null], [0.5, "queue.empty", 0]]);
});

test("marks, core ticks and track points are kept sorted by t as events arrive out of order", () => {
  const m = model([start(0, 101, 100, "a"), start(0, 102, 100, "b"),
    ["print", 0.5, 101, { cpu: 1, data: { text: "x" } }], ["ticket.sold", 0.4, 102, { cpu: 1 }],
    ["print", 0.3, 101, { cpu: 0, data: { text: "y" } }], ["ticket.sold", 0.2, 101, { cpu: 1 }],
    ["print", 0.45, 101, { cpu: 1, data: { text: "z" } }]], { lesson: TICKET });
  const ts = (list) => list.map((x) => x.t);
  assert.deepEqual(ts(m.byKey.get(101).marks), [0, 0.2, 0.3, 0.45, 0.5]); // proc.start: hoverable
  assert.deepEqual(ts(m.byKey.get(101).byShape.get("tick")), [0.3, 0.45, 0.5]);
  assert.deepEqual(ts(m.cores[1].ticks), [0.2, 0.4, 0.45, 0.5]);
  assert.deepEqual(ts(m.cores[0].ticks), [0.3]);
  assert.deepEqual(ts(m.sold.points), [0.2, 0.4]);
  assert.deepEqual(m.prints.map((e) => e.data.text), ["x", "y", "z"]); // arrival order
});

test("insertSorted inserts after equal times; firstAtOrAfter finds the window's start", () => {
  const list = [];
  for (const [t, id] of [[3, "a"], [1, "b"], [2, "c"], [2, "d"], [5, "e"], [0, "f"]]) insertSorted(list, { t, id });
  assert.deepEqual(list.map((x) => x.id), ["f", "b", "c", "d", "a", "e"]);
  assert.equal(firstAtOrAfter(list, 2), 2);
  assert.equal(firstAtOrAfter(list, 2.5), 4);
  assert.equal(firstAtOrAfter(list, -1), 0);
  assert.equal(firstAtOrAfter(list, 9), list.length);
});

test("seq gaps are counted as missing events; a gap-free stream has none", () => {
  const m = new RunModel(RUN, 2);
  const e = (seq) => ({ seq, kind: "print", t: seq / 10, pid: 101, data: { text: "" } });
  m.ingest([e(1), e(2), e(3)], 0);
  assert.equal(m.missing, 0);
  m.ingest([e(6), e(7)], 0); // 4 and 5 never came
  assert.equal(m.missing, 2);
  m.ingest([e(10)], 0);
  assert.equal(m.missing, 4);
  assert.equal(m.count, 6);
  assert.equal(m.lastSeq, 10);
});

test("the tracks shown are the lesson's declared ones, once they have something to show", () => {
  const m = new RunModel(RUN, 2, TICKET);
  assert.deepEqual(m.tracks(), []); // no event yet
  m.ingest([{ seq: 1, kind: "proc.start", t: 0, pid: 100, data: { role: "main" } }], 0);
  assert.deepEqual(m.tracks(), ["sold"]); // always: the stock line with no sale yet
  m.ingest([{ seq: 2, kind: "lock.wait", t: 0.1, pid: 100, data: {} }], 0);
  assert.deepEqual(m.tracks(), ["lock", "sold"]);
  m.ingest([{ seq: 3, kind: "queue.put", t: 0.2, pid: 100, data: { depth: 1 } }], 0);
  assert.deepEqual(m.tracks(), ["lock", "sold"]); // queue is not declared: not drawn
  assert.equal(m.stock(), 3);
});

test("a lesson that declares no tracks gets none, and no stock", () => {
  const m = model([start(0, 101, 100, "a"), ["lock.wait", 0.1, 101], ["ticket.sold", 0.2, 101]],
    { run: { id: "2", experiment: "other", params: { tickets: 3 } } });
  assert.deepEqual(m.tracks(), []);
  assert.equal(m.stock(), null);
});

test("the stock comes from the param the lesson names", () => {
  const m = new RunModel({ id: "3", experiment: "x", params: { seats: "12" } }, 1,
    { tracks: { sold: { always: true, stock_param: "seats", counts: "seat.sold" } } });
  assert.equal(m.stock(), 12);
});

const run = (t0, t1, pid, cpu, extra = {}) =>
  ["cpu.run", t1, pid, { cpu, data: { tid: pid, cpu, t0, t1, ...extra } }];

test("cpu.run stretches are the core lanes (with their share) and the lane's on-core time", () => {
  const m = model([start(0, 101, 100, "w"), start(0, 102, 100, "v"),
    run(0.1, 0.2, 101, 1, { preempted: true }), run(0.2, 0.3, 102, 1),
    run(0.05, 0.25, 102, 0, { share: 0.3, n: 4 }), // arrives later, starts earlier
    ["proc.state", 0.3, 101, { data: { state: "R", cpu: 0, oncpu: 1 } }]], { cores: 1 });
  const stretches = (list) => list.map((s) => [s.lane.pid, s.t0, s.t1, s.share]);
  assert.deepEqual(stretches(m.cores[1].runs), [[101, 0.1, 0.2, 1], [102, 0.2, 0.3, 1]]);
  assert.deepEqual(stretches(m.cores[0].runs), [[102, 0.05, 0.25, 0.3]]); // sorted by t0
  assert.equal(m.cores.length, 2); // a core named by a stretch gets its lane
  assert.deepEqual(stretches(m.byKey.get(102).onCpu), [[102, 0.05, 0.25, 0.3], [102, 0.2, 0.3, 1]]);
  assert.ok(Math.abs(onCoreSeconds(m.byKey.get(102).onCpu) - (0.2 * 0.3 + 0.1)) < 1e-9);
  // proc.state no longer puts anything on a core; cpu.run is no mark.
  assert.equal(m.byKey.get(101).onCpu.length, 1);
  assert.deepEqual(m.byKey.get(101).marks.map((e) => e.kind), ["proc.start"]);
  assert.equal(m.cores[0].maxLen, 0.2);
});

test("a stretch of 30 % share fills 30 % of its columns; two threads on one core alternate", () => {
  const a = { name: "a" };
  const b = { name: "b" };
  const painted = [];
  const stretches = [{ t: 0, t0: 0, t1: 0.01, share: 0.3, lane: a },
    { t: 0.01, t0: 0.01, t1: 0.015, share: 1, lane: b }, { t: 0.015, t0: 0.015, t1: 0.02, share: 1, lane: a }];
  paintOnCore(stretches, 0.01, { t0: 0, t1: 0.02, n: 20, clip: Infinity }, 10,
    (c0, c1, lane, level) => painted.push([c0, c1, lane.name, level]));
  assert.deepEqual(painted, [[0, 10, "a", 3], [10, 15, "b", 10], [15, 20, "a", 10]]);
  // Nothing after the clip (a replay's clock); a column half covered is half full.
  painted.length = 0;
  paintOnCore(stretches, 0.01, { t0: 0, t1: 0.02, n: 4, clip: 0.0125 }, 10,
    (c0, c1, lane, level) => painted.push([c0, c1, lane.name, level]));
  assert.deepEqual(painted, [[0, 2, "a", 3], [2, 3, "b", 5]]);
});

test("a thread's lane: under its process, named as it reports, ended by thread.exit", () => {
  const m = model([start(0, 100, 1, "main", "main"), start(0.1, 200, 100, "other"),
    ["proc.state", 0.2, 100, { data: { state: "R", tid: 555, cpu: 0, oncpu: 1 } }],
    ["cpu.run", 0.3, 100, { cpu: 0, data: { tid: 555, cpu: 0, t0: 0.2, t1: 0.3 } }],
    ["print", 0.25, 100, { tid: 555, thread: "thread-1", data: { text: "hi" } }],
    ["thread.exit", 0.35, 100, { data: { tid: 555, source: "kernel" } }],
    ["cpu.run", 0.4, 100, { cpu: 1, data: { tid: 100, cpu: 1, t0: 0.3, t1: 0.4 } }],
    exit(0.6, 100)]);
  assert.deepEqual(m.lanes.map((l) => l.key), [100, "100/555", 200]);
  const thread = m.byKey.get("100/555");
  assert.equal(thread.name, "main · thread-1"); // not "main · t555"
  assert.equal(thread.exit, 0.35); // thread.exit, not its process's exit
  assert.deepEqual(thread.marks.map((e) => e.kind), ["print"]); // its own events on its lane
  assert.deepEqual(thread.onCpu.map((s) => [s.t0, s.t1]), [[0.2, 0.3]]);
  assert.deepEqual(m.byKey.get(100).onCpu.map((s) => [s.t0, s.t1]), [[0.3, 0.4]]); // main thread
});

test("a thread named before its lane exists, and a process named after its thread", () => {
  const m = model([["print", 0.1, 100, { tid: 7, thread: "worker", data: { text: "" } }],
    start(0.05, 100, 1, "MainProcess", "main")]);
  assert.equal(m.byKey.get("100/7").name, "MainProcess · worker");
});

test("a report of a thread after it ended makes no lane; an unended thread stops at its last sign", () => {
  const m = model([start(0, 100, 1, "main", "main"),
    ["cpu.run", 0.2, 100, { cpu: 0, data: { tid: 9, cpu: 0, t0: 0.1, t1: 0.2 } }],
    ["thread.exit", 0.3, 100, { data: { tid: 8 } }], // never seen alive
    ["run.end", 1, null, { data: { status: "succeeded" } }]]);
  assert.equal(m.byKey.has("100/8"), false);
  assert.equal(m.byKey.get("100/9").exit, 0.2); // not drawn alive until the run's end
});

test("a dying process (state X, the kernel shows ppid 0) is not re-parented", () => {
  const m = model([start(0, 101, 100, "w"),
    ["proc.state", 0.4, 101, { ppid: 0, data: { state: "X", ppid: 0 } }],
    ["proc.state", 0.41, 101, { ppid: 100, data: { state: "X", ppid: 100 } }],
    ["print", 0.42, 101, { ppid: 0, data: { text: "" } }]]);
  assert.deepEqual(m.byKey.get(101).reparents, []);
  assert.equal(m.byKey.get(101).ppid, 100);
});

test("cpu.lanes and sampler.rate: how the core lanes were made, and at what resolution", () => {
  const m = model([["cpu.lanes", 0, null, { data: { mode: "sampled", detail: "why" } }],
    ["sampler.rate", 0.1, null, { data: { hz: 200, resolution_ms: 5, budget: 0.15 } }],
    ["sampler.rate", 0.2, null, { data: { hz: 1000, resolution_ms: 1, budget: 0.15 } }],
    ["cpu.lanes", 0.3, null, { data: { mode: "exact", lost: 12, broken: 3 } }]]);
  assert.deepEqual(m.cpuLanes, { mode: "exact", detail: "why", lost: 12, broken: 3 });
  assert.equal(m.resolutionMs, 1);
  assert.deepEqual(m.resolutionRange, [1, 5]);
});

test("a process whose ppid changes was re-parented (an orphan)", () => {
  const m = model([start(0, 101, 100, "orphan"), ["print", 0.5, 101, { ppid: 1, data: { text: "" } }]]);
  assert.deepEqual(m.byKey.get(101).reparents.map((r) => [r.t, r.from, r.to]), [[0.5, 100, 1]]);
});

test("a mark's shape comes from its kind", () => {
  assert.equal(markShape("ticket.sold", TICKET.marks), "star"); // the lesson's own kind
  assert.equal(markShape("ticket.sold"), "diamond"); // ... in a lesson that gives it none
  assert.equal(markShape("queue.full"), "upAlert");
  assert.equal(markShape("handler.error"), "cross");
  assert.equal(markShape("conn.weird.error"), "cross");
  assert.equal(markShape("map.result"), "diamond");
  assert.equal(markShape("proc.start"), null);
});

test("a live run's clock runs on from its newest event", () => {
  const m = new RunModel(RUN, 1);
  assert.equal(m.now(5000), 0); // nothing yet
  m.ingest([{ seq: 1, kind: "print", t: 2, pid: 101, data: { text: "" } }], 1000);
  assert.equal(m.now(1500), 2.5);
  m.ingest([{ seq: 2, kind: "print", t: 1, pid: 101, data: { text: "" } }], 1800); // older
  assert.equal(m.now(2000), 3); // maxT and its arrival time did not move
  assert.equal(m.version, 2);
  // A batch that came 0.5 s after its newest event: the clock does not step back to 3.1.
  m.ingest([{ seq: 3, kind: "print", t: 3.1, pid: 101, data: { text: "" } }], 2100);
  assert.equal(m.now(2100), 3.1);
  assert.equal(m.now(2500), 3.5); // a frame drawn at 3.5
  m.ingest([{ seq: 4, kind: "print", t: 3.2, pid: 101, data: { text: "" } }], 2600);
  assert.equal(m.now(2600), 3.5); // not 3.2, seq 4's late arrival: no step back
  assert.ok(Math.abs(m.now(3200) - 3.8) < 1e-9); // on again from the newest event
});
