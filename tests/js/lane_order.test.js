// Lane order and colours (static/run_model.js rows(), static/palette.js NameRegistry): the
// same run drawn alone and compared, whatever order its processes' events arrived in.
//
// Runs under node --test. Issue 23: join's compare showed worker-1, worker-3, worker-2, a
// Pool's workers came out 10:1, 10:3, 10:2, and a worker's colour was not the same alone
// and compared.

import { test } from "node:test";
import assert from "node:assert/strict";

import "./facts.js";
import { RunModel } from "../../static/run_model.js";
import { nameParts, stableOrder } from "../../static/lane_order.js";
import { NameRegistry } from "../../static/palette.js";

const RUN = { id: "1", experiment: "join", params: {} };

/** A model fed [kind, t, pid, fields] events in the order given (seq 1, 2, ...). */
function model(events, names = null) {
  const m = new RunModel(RUN, 2, {}, names);
  m.ingest(events.map(([kind, t, pid, fields = {}], i) => ({
    seq: i + 1, kind, t, pid, ppid: null, cpu: null, proc: null, data: {}, ...fields,
  })), 0);
  return m;
}

const start = (t, pid, name, role = "worker") =>
  ["proc.start", t, pid, { ppid: 100, proc: name, data: { name, role } }];
const main = start(0, 100, "main", "main");
const names = (m) => m.rows().map((l) => l.name);
const colors = (m) => Object.fromEntries(m.rows().map((l) => [l.name, l.color]));

test("a name's family and number", () => {
  assert.deepEqual(nameParts("worker-3"), ["worker-", 3]);
  assert.deepEqual(nameParts("ForkPoolWorker-10:2"), ["ForkPoolWorker-10:", 2]);
  assert.deepEqual(nameParts("main"), ["main", -1]);
});

test("siblings that report out of order are drawn in the order they were created", () => {
  // join: worker-3 ran its first line before worker-2 and worker-1 did.
  const m = model([main, start(0.134, 102, "worker-2"), start(0.136, 103, "worker-3"),
    start(0.1365, 101, "worker-1")]);
  assert.deepEqual(names(m), ["main", "worker-1", "worker-2", "worker-3"]);
  // A Pool's workers: 10:1, 10:3, 10:4, 10:2 as they reported.
  const pool = model([main, ...[1, 3, 4, 2].map((n, i) => start(0.11 + i * 0.004, 200 + n,
    `ForkPoolWorker-10:${n}`, "pool"))]);
  assert.deepEqual(names(pool).slice(1), [1, 2, 3, 4].map((n) => `ForkPoolWorker-10:${n}`));
});

test("families keep the order of their first start; the main is first", () => {
  const order = stableOrder([
    { key: 3, pid: 3, tid: null, name: "consumer-2", role: "consumer", start: 0.5 },
    { key: 1, pid: 1, tid: null, name: "producer", role: "producer", start: 0.2 },
    { key: 2, pid: 2, tid: null, name: "consumer-1", role: "consumer", start: 0.6 },
    { key: 9, pid: 9, tid: null, name: "main", role: "main", start: 0.3 },
    { key: 4, pid: 4, tid: null, name: "pid 4", role: null, start: 0.4 },
  ]);
  assert.deepEqual(order.map((l) => l.name), ["main", "producer", "pid 4", "consumer-1", "consumer-2"]);
});

test("a run has the same order and colours alone and compared, in both halves", () => {
  const inOrder = [main, start(0.1, 101, "worker-1"), start(0.11, 102, "worker-2"),
    start(0.12, 103, "worker-3")];
  const mixed = [main, start(0.1, 203, "worker-3"), start(0.11, 201, "worker-1"),
    start(0.12, 202, "worker-2")];
  const alone = model(inOrder);
  const shared = new NameRegistry();
  const first = model(mixed, shared);
  const second = model(inOrder, shared);
  for (const m of [alone, first, second]) {
    assert.deepEqual(names(m), ["main", "worker-1", "worker-2", "worker-3"]);
  }
  assert.deepEqual(colors(first), colors(alone));
  assert.deepEqual(colors(second), colors(alone));
  assert.equal(new Set(Object.values(colors(alone))).size, 4); // the main grey, three hues
  // The other side starts a process the first has not: a hue of its own, and the shared
  // ones stay.
  const third = model([...mixed, start(0.3, 204, "grandchild")], shared);
  assert.deepEqual(colors(third), { ...colors(alone), grandchild: colors(third).grandchild });
  assert.ok(!Object.values(colors(alone)).includes(colors(third).grandchild));
});

test("procscope trace's reaping of the program's main is no lane of the run", () => {
  const m = model([start(0, 100, "MainProcess", "main"),
    ["proc.exit", 0.5, 100, { data: { exitcode: 3, source: "reaped" } }],
    ["proc.reap", 0.5, 99, { proc: "procscope trace", data: { child: 100, exitcode: 3, by: "trace" } }]]);
  assert.deepEqual(names(m), ["MainProcess"]);
  assert.equal(m.byKey.get(100).reap, 0.5);
});

test("the processes take the first hues, their threads the next ones", () => {
  // A Pool's main has its handler threads (folded into its lane): they come after.
  const m = model([main,
    ["wait.start", 0.01, 100, { tid: 201, thread: "Thread-1 (_handle_workers)", data: {} }],
    ["wait.start", 0.01, 100, { tid: 202, thread: "lost-task-watch", data: {} }],
    start(0.1, 101, "ForkPoolWorker-1:1", "pool"), start(0.1, 102, "ForkPoolWorker-1:2", "pool")]);
  const hue = (name) => m.lanes.find((l) => l.name === name).color;
  assert.equal(hue("ForkPoolWorker-1:1"), "#0072B2");
  assert.equal(hue("ForkPoolWorker-1:2"), "#E69F00");
  assert.equal(hue("main · lost-task-watch"), "#CC79A7");
});
