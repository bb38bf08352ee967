// Time on a core, per pixel column: the `cpu.run` stretches of a core lane (or of one
// process or thread lane) summed over each column of the visible window.
//
// Runs in the browser (and under node --test: tests/js/on_core.test.js), called by
// core_lanes.js and process_lanes.js for each frame. A stretch counts (t1 - t0) x share of
// on-core time (share: the fraction of [t0, t1] it really ran; 1 when exact and unmerged),
// spread over the columns it covers; a column is then drawn as full as its summed share
// (a sampled period in which a thread ran 30 % is 30 % full) in the colour of the lane that
// ran most of it. The cost is one pass over the visible stretches plus one over the
// columns they touch: a 100,000-stretch run costs what its pixels cost. The stretches are
// kept by addStretch (run_model.js calls it for each cpu.run), sorted by t0, with the
// longest one's length for the windowed search.

import { firstAtOrAfter, insertSorted } from "./time_sorted.js";

/** One cpu.run into `model`: [t0, t1] on core `cpu`, `share` of it really running (1 when
 * absent), on its core lane and on the lane of its process or thread. */
export function addStretch(model, lane, e, data) {
  const core = data.cpu ?? e.cpu;
  if (core === null || core === undefined || typeof data.t0 !== "number" || typeof data.t1 !== "number") return;
  model.ensureCores(core + 1);
  const share = typeof data.share === "number" ? Math.max(0, Math.min(1, data.share)) : 1;
  const s = { t: data.t0, t0: data.t0, t1: data.t1, share, core, lane, e };
  const len = data.t1 - data.t0;
  insertSorted(lane.onCpu, s);
  if (len > lane.onCpuMax) lane.onCpuMax = len;
  const c = model.cores[core];
  insertSorted(c.runs, s);
  if (len > c.maxLen) c.maxLen = len;
}

let busy = new Float64Array(0); // on-core share per column (0-1, more where threads overlap)
let top = new Float64Array(0); // the largest single lane's share per column
let who = []; // that lane per column

function scratch(n) {
  if (busy.length < n) {
    busy = new Float64Array(n);
    top = new Float64Array(n);
    who = new Array(n).fill(null);
  }
}

/**
 * Sum `stretches` (sorted by t = t0; {t0, t1, share, lane}; none longer than `maxLen`)
 * over `n` columns spanning [t0, t1), nothing after `clip`. Calls paint(c0, c1, lane,
 * level) for each run of adjacent columns [c0, c1) with the same main lane and the same
 * fullness `level` (an integer in 1..levels, levels meaning full).
 */
export function paintOnCore(stretches, maxLen, { t0, t1, n, clip }, levels, paint) {
  if (!stretches.length || n <= 0 || !(t1 > t0)) return;
  const tEnd = Math.min(t1, clip);
  const dt = (t1 - t0) / n;
  scratch(n);
  let lo = n;
  let hi = -1;
  for (let i = firstAtOrAfter(stretches, t0 - maxLen); i < stretches.length; i++) {
    const s = stretches[i];
    if (s.t0 >= tEnd) break;
    const a = Math.max(s.t0, t0);
    const b = Math.min(s.t1, tEnd);
    if (!(b > a)) continue;
    const share = s.share ?? 1;
    const ca = Math.min(n - 1, Math.floor((a - t0) / dt));
    const cb = Math.min(n - 1, Math.floor((b - t0) / dt));
    if (ca < lo) lo = ca;
    if (cb > hi) hi = cb;
    for (let c = ca; c <= cb; c++) {
      const left = t0 + c * dt;
      const part = ((Math.min(b, left + dt) - Math.max(a, left)) / dt) * share;
      if (part <= 0) continue;
      busy[c] += part;
      if (who[c] === s.lane) top[c] += part;
      else if (part > top[c]) {
        top[c] = part;
        who[c] = s.lane;
      }
    }
  }
  // Runs of columns alike, each painted once; the scratch columns are cleared behind us.
  let runStart = -1;
  let runLane = null;
  let runLevel = 0;
  for (let c = lo; c <= hi + 1; c++) {
    let lane = null;
    let level = 0;
    if (c <= hi) {
      level = Math.round(Math.min(1, busy[c]) * levels);
      lane = level > 0 ? who[c] : null;
      busy[c] = 0;
      top[c] = 0;
      who[c] = null;
    }
    if (lane !== runLane || level !== runLevel) {
      if (runLane !== null) paint(runStart, c, runLane, runLevel);
      runStart = c;
      runLane = lane;
      runLevel = level;
    }
  }
}

/** On-core seconds of `stretches` within [t0, t1]: what the columns above add up to. */
export function onCoreSeconds(stretches, t0 = -Infinity, t1 = Infinity) {
  let sum = 0;
  for (const s of stretches) {
    const a = Math.max(s.t0, t0);
    const b = Math.min(s.t1, t1);
    if (b > a) sum += (b - a) * (s.share ?? 1);
  }
  return sum;
}
