// One process lane: alive, on a core, waiting (hatched) or holding (solid), zombie, its
// marks, re-parenting and how it ended.
//
// Runs in the browser, called by timeline.js for each visible lane of each frame.

import { firstAtOrAfter } from "./time_sorted.js";
import { drawGlyph, drawNote, drawShape } from "./marks.js";
import { paintOnCore } from "./on_core.js";
import { t } from "./i18n.js";

const STRIP_LEVELS = 5; // densities of the on-core strip (a few: it is a few pixels tall)

const SIGNALS = { 1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM" };

export function drawLane(tl, ctx, lane, y, h, view, clip, theme) {
  if (lane.start === null || lane.start > clip) return;
  const tEnd = Math.min(view.t1, clip);
  const end = lane.exit !== null && lane.exit <= clip ? lane.exit : clip;
  const color = lane.color;
  // Alive: a thin bar from start to exit.
  const x0 = tl.x(lane.start, view);
  const x1 = Math.max(x0 + 1, tl.x(end, view));
  ctx.globalAlpha = 0.4;
  ctx.fillStyle = color;
  const thin = h < 7;
  ctx.fillRect(x0, thin ? y : y + h * 0.32, x1 - x0, thin ? h : h * 0.36);
  ctx.globalAlpha = 1;
  drawBody(tl, ctx, lane, color, y, h, view, clip, tEnd, theme);
  // multiprocessing's helper threads folded into this row: their waits, tasks, marks and
  // time on a core, in the process's colour (RunModel.rows).
  for (const thread of lane.folded) drawBody(tl, ctx, thread, color, y, h, view, clip, tEnd, theme);
  drawZombie(tl, ctx, lane, y, h, view, clip, theme);
  const maxX = tl.geom.gutter + tl.geom.plotW;
  for (const r of lane.reparents) {
    if (r.t > tEnd || r.t < view.t0) continue;
    const x = tl.x(r.t, view);
    drawGlyph(ctx, "↱", x, y, h, theme.text, theme, true);
    if (h >= 12) drawNote(ctx, t("re-parented %(from)s → %(to)s", { from: r.from, to: r.to }), x + 8, y, h, theme, maxX);
  }
  if (lane.exit !== null && lane.exit <= clip && lane.exitcode !== 0 && lane.exitcode !== null) {
    // Killed by a signal (negative exit code): a black ✕ and the signal's name; an error
    // exit (positive): a red ✕.
    const x = tl.x(lane.exit, view);
    const signal = lane.exitcode < 0;
    drawShape(ctx, "cross", x, y + h / 2, Math.max(4, Math.min(12, h)), signal ? theme.text : theme.error, theme);
    if (signal && h >= 12) drawNote(ctx, SIGNALS[-lane.exitcode] || t("signal %(n)s", { n: -lane.exitcode }), x + 8, y, h, theme, maxX);
  }
}

/** A lane's spans (waiting hatched, holding / working solid, each labelled where it is
 * wide enough), its on-core strip and its marks. */
function drawBody(tl, ctx, lane, color, y, h, view, clip, tEnd, theme) {
  for (const s of lane.spans) {
    if (s.t0 > tEnd) break;
    const t1 = s.t1 === null ? clip : Math.min(s.t1, clip);
    if (t1 < view.t0) continue;
    const a = tl.x(s.t0, view);
    const b = Math.max(a + 1.5, tl.x(t1, view));
    const inset = h >= 8 ? 1 : 0;
    if ((s.kind === "wait" || s.kind === "join") && h < 4) {
      // Too thin for a texture to read: waiting is the pale fill, holding the full one.
      ctx.globalAlpha = 0.3;
      ctx.fillStyle = color;
      ctx.fillRect(a, y, b - a, h);
      ctx.globalAlpha = 1;
    } else if (s.kind === "wait" || s.kind === "join") {
      ctx.fillStyle = hatch(tl, ctx, color);
      ctx.fillRect(a, y + inset, b - a, h - 2 * inset);
    } else {
      ctx.fillStyle = color;
      ctx.fillRect(a, y + inset, b - a, h - 2 * inset);
      if (h >= 8) {
        ctx.strokeStyle = theme.text;
        ctx.lineWidth = 1;
        ctx.strokeRect(a + 0.5, y + inset + 0.5, b - a - 1, h - 2 * inset - 1);
      }
    }
    if (h >= 12 && s.label) spanLabel(ctx, s.label, Math.max(a, tl.geom.gutter), Math.min(b, tl.geom.gutter + tl.geom.plotW), y, h, theme);
  }
  // On a core, as the kernel saw it (cpu.run): a dark strip along the bottom, as dense as
  // the share of each column it ran; over the spans (a thread in a task still takes turns).
  if (lane.onCpu.length) {
    ctx.fillStyle = theme.text;
    const sh = Math.max(1, h * 0.22);
    const g = tl.geom;
    const cols = Math.max(1, Math.round(g.plotW));
    const colW = g.plotW / cols;
    paintOnCore(lane.onCpu, lane.onCpuMax, { t0: view.t0, t1: view.t1, n: cols, clip }, STRIP_LEVELS,
      (c0, c1, _lane, level) => {
        ctx.globalAlpha = level / STRIP_LEVELS;
        ctx.fillRect(g.gutter + c0 * colW, y + h - sh, (c1 - c0) * colW, sh);
      });
    ctx.globalAlpha = 1;
  }
  drawMarks(tl, ctx, lane, y, h, view, tEnd, theme);
}

/** A span's label inside it ("item 3", "in q.get(): waiting for an item"), cut at its
 * end; not drawn at all where not even a few letters fit. */
function spanLabel(ctx, text, a, b, y, h, theme) {
  const room = b - a - 6;
  if (room < 24) return;
  ctx.font = theme.smallFont;
  let shown = text;
  if (ctx.measureText(shown).width > room) {
    while (shown.length > 2 && ctx.measureText(`${shown}…`).width > room) shown = shown.slice(0, -1);
    shown = `${shown}…`;
  }
  const w = ctx.measureText(shown).width;
  ctx.fillStyle = "rgba(255, 255, 255, 0.8)";
  ctx.fillRect(a + 2, y + h / 2 - 7, w + 4, 14);
  ctx.fillStyle = theme.text;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(shown, a + 4, y + h / 2);
}

function drawZombie(tl, ctx, lane, y, h, view, clip, theme) {
  if (lane.tid && lane.zombieSince === null) return; // a thread is never reaped on its own
  const since = lane.zombieSince !== null ? Math.min(lane.zombieSince, lane.exit ?? Infinity) : lane.exit;
  if (since === null || since > clip) return;
  const until = lane.reap !== null && lane.reap <= clip ? lane.reap : clip;
  if (until - since <= 0) return;
  if (lane.reap === null && lane.zombieSince === null && tl.model.endT !== null) return;
  const a = tl.x(since, view);
  const b = Math.max(a + 1, tl.x(until, view));
  ctx.fillStyle = "#d9d9d9";
  ctx.fillRect(a, y + 1, b - a, Math.max(1, h - 2));
  if (h >= 6) {
    ctx.setLineDash([3, 2]);
    ctx.strokeStyle = theme.text;
    ctx.lineWidth = 1;
    ctx.strokeRect(a + 0.5, y + 1.5, b - a - 1, h - 3);
    ctx.setLineDash([]);
  }
  if (h >= 10 && b - a > 12) {
    ctx.fillStyle = theme.text;
    ctx.font = theme.smallFont;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(b - a > 70 ? t("zombie") : "Z", (a + b) / 2, y + h / 2);
  }
}

function drawMarks(tl, ctx, lane, y, h, view, tEnd, theme) {
  // One list per shape, so a rare ★ or ✕ is never hidden by a crowd of prints; within a
  // shape, after drawing a mark we binary-search to the first one far enough to the right
  // to be seen apart from it: the cost is per visible column, not per event.
  const size = Math.max(4, Math.min(13, h * 0.9));
  // Lanes a few pixels tall: common marks become dots (a rectangle is far cheaper than a
  // path, and a shape would not read anyway); the rare ★ and ✕ keep their shapes.
  const dots = h < 6;
  for (const [shape, marks] of lane.byShape) {
    const asDot = shape === "tick" || (dots && shape !== "star" && shape !== "cross");
    const gap = asDot ? (dots ? 3 : 2) : Math.max(2, size * 0.5);
    if (asDot) ctx.fillStyle = theme.text;
    let i = firstAtOrAfter(marks, view.t0);
    while (i < marks.length) {
      const e = marks[i];
      if (e.t > tEnd) break;
      const px = tl.x(e.t, view);
      if (asDot) {
        ctx.fillRect(px | 0, y, 1.5, dots ? h : Math.max(2, h * 0.5));
      } else {
        drawShape(ctx, shape, px, y + h / 2, size, shape === "cross" ? theme.error : theme.text, theme);
      }
      const next = firstAtOrAfter(marks, tl.tAt(px + gap, view));
      i = next > i ? next : i + 1;
    }
  }
}

function hatch(tl, ctx, color) {
  let p = tl.patterns.get(color);
  if (p) return p;
  const c = document.createElement("canvas");
  c.width = c.height = 6;
  const cx = c.getContext("2d");
  cx.globalAlpha = 0.18;
  cx.fillStyle = color;
  cx.fillRect(0, 0, 6, 6);
  cx.globalAlpha = 0.75;
  cx.strokeStyle = color;
  cx.lineWidth = 1.4;
  cx.beginPath();
  cx.moveTo(-1, 7);
  cx.lineTo(7, -1);
  cx.moveTo(-1, 1);
  cx.lineTo(1, -1);
  cx.moveTo(5, 7);
  cx.lineTo(7, 5);
  cx.stroke();
  p = ctx.createPattern(c, "repeat");
  tl.patterns.set(color, p);
  return p;
}
