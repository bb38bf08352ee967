// Key moments (static/key_moment.js), helper threads folded into their process's lane and
// colours by name (static/run_model.js, palette.js): issue 12.

import { test } from "node:test";
import assert from "node:assert/strict";

import "./facts.js";
import { RunModel } from "../../static/run_model.js";
import { NameRegistry } from "../../static/palette.js";
import { fillLabel, keyMoments, momentsWindow } from "../../static/key_moment.js";

function model(events, names = null) {
  const m = new RunModel({ id: "1", experiment: "x", params: {} }, 2, { tracks: { queue: {} } }, names);
  m.ingest(events.map(([kind, t, pid, fields = {}], i) => ({
    seq: i + 1, kind, t, pid, ppid: null, cpu: null, proc: null, data: {}, ...fields,
  })), 0);
  return m;
}
const start = (t, pid, name, role = "child") => ["proc.start", t, pid, { proc: name, data: { name, role } }];
const print = (t, pid, proc, text, extra = {}) => ["print", t, pid, { proc, data: { text }, ...extra }];

test("process_start's moment: from the main's '主' to the child's first line, the gap in ms", () => {
  const m = model([start(0, 100, "main", "main"), start(0.02, 101, "worker-alex"),
    print(0.01, 100, "main", "主"), print(0.0135, 101, "worker-alex", "alex is running"),
    print(0.4, 101, "worker-alex", "alex is done")]);
  const [mo] = keyMoments(m, [{ start: { kind: "print", proc: "main", text: "主" },
    end: { kind: "print", proc: "!main" }, label: "'主' first, the child {ms} ms later" }]);
  assert.equal(mo.t0, 0.01);
  assert.equal(mo.t1, 0.0135);
  assert.equal(mo.label, "'主' first, the child 3.5 ms later");
  const w = momentsWindow([mo]);
  assert.ok(w.t0 < 0.01 && w.t1 > 0.0135 && w.t1 - w.t0 < 0.01);
});

test("nth, span events, the queue's depth and the result in a label; a moment not found is left out", () => {
  const m = model([start(0, 100, "main", "main"),
    ["queue.put", 0.1, 100, { data: { depth: 1 } }], ["queue.put", 0.2, 100, { data: { depth: 2 } }],
    ["queue.put", 0.3, 100, { data: { depth: 3 } }],
    ["wait.start", 0.3, 100, { data: { call: "q.put('fourth')", waits_for: "room in the queue" } }],
    ["wait.end", 1.3, 100, { data: { outcome: "queue.Full" } }],
    ["run.end", 2, null, { data: { status: "succeeded", result: { got: ["a", "b"] } } }]]);
  const moments = keyMoments(m, [
    { start: { kind: "queue.put", nth: 1 }, end: { kind: "queue.put", nth: -1 }, label: "up to {depth_max}" },
    { start: { kind: "wait.start" }, end: { kind: "wait.end" }, label: "waited {s} s: {end.outcome}; {result.got}" },
    { start: { kind: "queue.empty" }, end: { kind: "queue.get" }, label: "never" }]);
  assert.deepEqual(moments.map((x) => x.label), ["up to 3", "waited 1.00 s: queue.Full; a, b"]);
  const wait = m.byKey.get(100).spans.find((s) => s.kind === "wait");
  assert.deepEqual([wait.t0, wait.t1, wait.label], [0.3, 1.3, "in q.put('fourth'): waiting for room in the queue → queue.Full"]);
});

test("a thread the lesson names in its helper_threads folds too; in another lesson it does not", () => {
  const events = [start(0, 100, "main", "main"),
    ["wait.start", 0.1, 100, { tid: 201, thread: "watch", data: {} }]];
  const lesson = { helper_threads: ["watch"] };
  const folded = new RunModel({ id: "1", experiment: "x", params: {} }, 2, lesson);
  folded.ingest(events.map(([kind, t, pid, fields = {}], i) => ({
    seq: i + 1, kind, t, pid, ppid: null, cpu: null, proc: null, data: {}, ...fields })), 0);
  assert.deepEqual(folded.rows().map((l) => l.name), ["main"]);
  assert.deepEqual(model(events).rows().map((l) => l.name), ["main", "main · watch"]);
});

test("fillLabel leaves unknown fields as they are", () => {
  assert.equal(fillLabel("{nope} {ms}", { t0: 0, t1: 0.25, start: {}, end: {}, result: null }), "{nope} 250");
});

test("multiprocessing's helper threads fold into their process's row; the lesson's own threads do not", () => {
  const m = model([start(0, 100, "main", "main"),
    ["print", 0.1, 100, { tid: 201, thread: "QueueFeederThread", data: { text: "x" } }],
    ["callback", 0.2, 100, { tid: 202, thread: "Thread-3 (_handle_results)" }],
    ["task.start", 0.2, 100, { tid: 203, thread: "thread-1" }],
    ["cpu.run", 0.3, 100, { data: { tid: 204, cpu: 0, t0: 0.25, t1: 0.3 } }]]);
  const rows = m.rows();
  assert.deepEqual(rows.map((l) => l.name), ["main", "main · thread-1"]);
  assert.deepEqual(rows[0].folded.map((l) => l.tid), [201, 202, 204]);
  assert.equal(rows[0].helpers, 3);
  assert.equal(m.byKey.get("100/204").foldedInto, rows[0]); // its CPU drawn in main's colour
  m.toggleFold(100);
  assert.equal(m.rows().length, 5);
  m.toggleFold(100);
  assert.equal(m.rows().length, 2);
});

test("compared runs share colours and order by process name", () => {
  const names = new NameRegistry();
  const a = model([start(0, 100, "main", "main"), start(0.1, 101, "worker-1"), start(0.2, 102, "worker-2")], names);
  const b = model([start(0, 200, "main", "main"), start(0.1, 202, "worker-2"), start(0.2, 201, "worker-1")], names);
  const color = (m, name) => m.lanes.find((l) => l.name === name).color;
  assert.equal(color(a, "worker-1"), color(b, "worker-1"));
  assert.equal(color(a, "worker-2"), color(b, "worker-2"));
  assert.notEqual(color(a, "worker-1"), color(a, "worker-2"));
  assert.deepEqual(b.rows().map((l) => l.name), ["main", "worker-1", "worker-2"]);
});
