// The core lanes: one per CPU core, who ran there (the kernel's cpu.run stretches) and which
// process emitted events there (ticks).
//
// Runs in the browser, called by timeline.js once per frame. A column of a core lane is as
// full as the share of its time a thread of the run was on that core, in the colour of the
// thread (or process) that ran most of it: GIL hand-offs between two threads read as
// alternating colours on one core, two processes as two full lanes. Sampled stretches
// (share < 1) are drawn that much less tall, from the bottom of the lane.

import { firstAtOrAfter } from "./time_sorted.js";
import { paintOnCore } from "./on_core.js";
import { t } from "./i18n.js";

const LEVELS = 20; // heights a column can take (a 5 % step; a core lane is ~20 px tall)
let inUse = new Float64Array(0); // cores busy per column, summed over the core lanes

export function drawCores(tl, view, clip, theme) {
  const g = tl.geom;
  const ctx = tl.context(tl.cores);
  const m = tl.model;
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, g.width, g.coresH);
  tl.grid(ctx, view, theme, theme.axisH - 4, g.coresH, true);
  const tEnd = Math.min(view.t1, clip);
  const cols = Math.max(1, Math.round(g.plotW));
  const colW = g.plotW / cols;
  const win = { t0: view.t0, t1: view.t1, n: cols, clip };
  if (inUse.length < cols) inUse = new Float64Array(cols);
  inUse.fill(0, 0, cols);
  m.cores.forEach((core, k) => {
    const y = theme.axisH + k * theme.coreH;
    const h = theme.coreH - 2;
    ctx.fillStyle = theme.laneAlt;
    ctx.fillRect(g.gutter, y, g.plotW, h);
    ctx.fillStyle = theme.text;
    ctx.font = theme.font;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(t("CPU %(k)s", { k }), g.gutter - 8, y + h / 2);
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.gutter, y, g.plotW, h);
    ctx.clip();
    // The kernel's word: who was on this core, and how much of each column.
    paintOnCore(core.runs, core.maxLen, win, LEVELS, (c0, c1, lane, level) => {
      const bar = (h * level) / LEVELS;
      // A folded helper thread's time is its process's (it is drawn in its lane).
      ctx.fillStyle = (lane.foldedInto || lane).color;
      ctx.fillRect(g.gutter + c0 * colW, y + h - bar, (c1 - c0) * colW, bar);
      for (let c = c0; c < c1; c++) inUse[c] += level / LEVELS;
    });
    // A process saying "I am on this core" as it emits an event: a short tick on top.
    const ticks = core.ticks;
    let lastPx = -1;
    const tickH = Math.max(3, h * 0.2);
    let i = firstAtOrAfter(ticks, view.t0);
    while (i < ticks.length) {
      const tk = ticks[i];
      if (tk.t > tEnd) break;
      const px = tl.x(tk.t, view) | 0;
      // Next: the first tick of the next pixel column (the rest of this one is hidden).
      const next = firstAtOrAfter(ticks, tl.tAt(px + 1, view));
      i = next > i ? next : i + 1;
      if (px === lastPx) continue;
      lastPx = px;
      ctx.fillStyle = theme.text;
      ctx.fillRect(px, y, 1.5, tickH);
    }
    ctx.restore();
  });
  drawInUse(tl, ctx, view, clip, theme, cols, colW);
  tl.nowLine(ctx, view, clip, theme, theme.axisH - 4, g.coresH, true);
}

/**
 * The row under the core lanes: how many cores the run kept busy, column by column (0 at
 * the bottom, every core at the top; a line per whole core), and on the left the average
 * over what is shown. GIL-bound threads read as one core's worth however they hop between
 * cores; processes as all of them.
 */
function drawInUse(tl, ctx, view, clip, theme, cols, colW) {
  const g = tl.geom;
  const m = tl.model;
  const n = m.cores.length;
  const y = theme.axisH + n * theme.coreH;
  const h = theme.coreH - 2;
  ctx.fillStyle = theme.laneAlt;
  ctx.fillRect(g.gutter, y, g.plotW, h);
  // The average over the shown time that has happened (not past the end or the clip).
  const tEnd = Math.min(view.t1, clip, m.endT ?? Infinity, m.maxT);
  const last = Math.min(cols, Math.max(0, Math.ceil(((tEnd - view.t0) / (view.t1 - view.t0)) * cols)));
  const first = Math.max(0, Math.floor((-view.t0 / (view.t1 - view.t0)) * cols));
  let sum = 0;
  ctx.fillStyle = theme.text;
  ctx.globalAlpha = 0.55;
  let c = 0;
  while (c < cols) {
    const v = inUse[c];
    let e = c + 1;
    while (e < cols && Math.abs(inUse[e] - v) < 1e-9) e++;
    if (c >= first && c < last) sum += v * (Math.min(e, last) - c);
    if (v > 0) {
      const bar = (h * Math.min(n, v)) / n;
      ctx.fillRect(g.gutter + c * colW, y + h - bar, (e - c) * colW, bar);
    }
    c = e;
  }
  ctx.globalAlpha = 1;
  ctx.fillStyle = theme.axis;
  for (let k = 1; k < n; k++) ctx.fillRect(g.gutter, y + h - (h * k) / n, g.plotW, 1);
  const avg = last > first ? sum / (last - first) : 0;
  ctx.fillStyle = theme.text;
  ctx.font = theme.font;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(t("cores busy %(n)s", { n: avg.toFixed(1) }), g.gutter - 8, y + h / 2);
  tl.inUseAvg = avg; // for the tests and for people who script the page
}
