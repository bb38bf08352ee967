// View and Clock (static/view.js): the time window and the replay clock every timeline on
// the page shares. Runs under node --test.

import { test } from "node:test";
import assert from "node:assert/strict";

import { Clock, View, advance, roundUp } from "../../static/view.js";

const close = (actual, expected, msg) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${msg ?? ""} ${actual} != ${expected}`);

test("roundUp gives the next round number: a growing run rescales in calm steps", () => {
  const want = [0.3, 0.4, 1, 1.5, 8, 10, 15, 1];
  [0.3, 0.35, 1, 1.01, 7, 9.5, 11, 0].forEach((x, i) => close(roundUp(x), want[i], `roundUp(${x})`));
});

test("fit, live: from 0 to a round number past now, at least 0.2 s", () => {
  const v = new View();
  v.update(1, true);
  assert.deepEqual([v.t0, v.t1, v.mode], [0, 1.5, "fit"]); // roundUp(1.04)
  v.update(0.01, true);
  assert.equal(v.t1, 0.2);
  v.update(2.9, true);
  assert.equal(v.t1, 4); // roundUp(3.016)
});

test("fit, finished: the whole run and 2% more", () => {
  const v = new View();
  v.update(2, false);
  assert.equal(v.t0, 0);
  close(v.t1, 2.04);
  v.update(0, false);
  assert.equal(v.t1, 0.001); // never an empty window
});

test("zoom keeps the instant under the pointer where it was", () => {
  const v = new View();
  v.update(10, false); // 0 .. 10.2
  const at = 2.55; // a quarter of the way
  const frac = (at - v.t0) / (v.t1 - v.t0);
  v.zoom(0.5, at, 10, false);
  close(v.t1 - v.t0, 5.1, "span halves");
  close((at - v.t0) / (v.t1 - v.t0), frac, "same fraction");
  assert.equal(v.mode, "free"); // a finished run stays where it was zoomed
});

test("zooming in on a live run that still shows now follows the live edge", () => {
  const v = new View();
  v.update(4, true); // 0 .. 5
  v.zoom(0.5, 4.5, 4, true);
  assert.equal(v.mode, "follow");
  const span = v.t1 - v.t0;
  v.update(6, true); // the run went on: the window slides, same zoom
  close(v.t1 - v.t0, span, "same span");
  close(v.t1, 6 + span * 0.04, "now near the right edge");
});

test("zooming in away from now on a live run leaves it free", () => {
  const v = new View();
  v.update(4, true);
  v.zoom(0.25, 0.5, 4, true);
  assert.equal(v.mode, "free");
  const [t0, t1] = [v.t0, v.t1];
  v.update(8, true);
  assert.deepEqual([v.t0, v.t1], [t0, t1]); // stays put
});

test("zooming out until the whole run shows is fit again", () => {
  const v = new View();
  v.update(4, false);
  v.zoom(0.25, 2, 4, false);
  assert.equal(v.mode, "free");
  v.zoom(8, 2, 4, false);
  assert.equal(v.mode, "fit");
});

test("zoom never goes far before 0, nor below half a millisecond", () => {
  const v = new View();
  v.update(1, false);
  v.zoom(3, 0, 1, false);
  assert.ok(v.t0 >= -(v.t1 - v.t0) * 0.05 - 1e-12, `t0 ${v.t0}`);
  for (let i = 0; i < 40; i++) v.zoom(0.5, 0.3, 1, false);
  close(v.t1 - v.t0, 0.0005, "MIN_SPAN");
});

test("pan moves the window; onto the live edge it follows, away from it it is free", () => {
  const v = new View();
  v.update(10, false);
  v.zoom(0.5, 5, 10, false);
  const [t0, t1] = [v.t0, v.t1];
  v.pan(-1, 10, false);
  close(v.t0, t0 - 1);
  close(v.t1, t1 - 1);
  assert.equal(v.mode, "free");
  v.pan(20, 10, true);
  assert.equal(v.mode, "follow");
  v.fit();
  assert.equal(v.mode, "fit");
});

test("a replay's clock never reads before where it started", () => {
  const c = new Clock();
  c.play(1000, 0); // pressed at performance.now() = 1000 ...
  assert.equal(c.time(998), 0); // ... drawn in a frame stamped a little earlier
});

test("the clock: live shows everything, pause freezes, play runs at its speed", () => {
  const c = new Clock();
  assert.equal(c.time(0), Infinity);
  c.pause(1000, 2.5);
  assert.equal(c.time(9999), 2.5);
  c.play(1000, 2.5);
  close(c.time(1500), 3);
  c.setSpeed(1500, 4); // keeps the current time, then runs 4x
  close(c.time(2000), 5);
  c.seek(2000, 1);
  close(c.time(2250), 2);
  c.live();
  assert.equal(c.time(3000), Infinity);
  c.seek(3000, 0.5); // seeking a live run pauses it there
  assert.deepEqual([c.mode, c.time(4000)], ["paused", 0.5]);
  c.live();
  c.setSpeed(5000, 2); // from live: a finite time to start from
  assert.equal(c.t, 0);
});

test("a frame: a replay that reaches the end pauses there, or goes live while a run is", () => {
  const v = new View();
  const c = new Clock();
  c.play(1000, 1);
  // Playing, not at the end yet: the clock's time, the view fitted to the end.
  assert.deepEqual(advance(v, c, 1500, 4, false), { clip: 1.5, stopped: false });
  assert.deepEqual([c.mode, v.t0], ["playing", 0]);
  close(v.t1, 4.08);
  // Past the end of a finished run: paused at its end, once.
  assert.deepEqual(advance(v, c, 5000, 4, false), { clip: 4, stopped: true });
  assert.equal(c.mode, "paused");
  assert.deepEqual(advance(v, c, 6000, 4, false), { clip: 4, stopped: false });
  // Past the live edge of a run still live: live again, and the view grows with the run.
  c.play(6000, 3);
  assert.deepEqual(advance(v, c, 7500, 4, true), { clip: Infinity, stopped: true });
  assert.deepEqual([c.mode, v.t1], ["live", 5]); // roundUp(4.16)
  // Live: everything, never "stopped".
  assert.deepEqual(advance(v, c, 8000, 4.5, true), { clip: Infinity, stopped: false });
});

