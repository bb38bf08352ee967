// The core lanes: one per CPU core, what ran there (the kernel sampler's R states) and which
// process emitted events there (ticks).
//
// Runs in the browser, called by timeline.js once per frame.

import { firstAtOrAfter } from "./time_sorted.js";

export function drawCores(tl, view, clip, theme) {
  const g = tl.geom;
  const ctx = tl.context(tl.cores);
  const m = tl.model;
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, g.width, g.coresH);
  tl.grid(ctx, view, theme, theme.axisH - 4, g.coresH, true);
  const tEnd = Math.min(view.t1, clip);
  const sampled = m.cores.some((c) => c.runs.length);
  m.cores.forEach((core, k) => {
    const y = theme.axisH + k * theme.coreH;
    const h = theme.coreH - 2;
    ctx.fillStyle = theme.laneAlt;
    ctx.fillRect(g.gutter, y, g.plotW, h);
    ctx.fillStyle = theme.text;
    ctx.font = theme.font;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(`CPU ${k}`, g.gutter - 8, y + h / 2);
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.gutter, y, g.plotW, h);
    ctx.clip();
    // The kernel's word: who was running (R) on this core, and when.
    let lastX1 = -1;
    for (const { span } of core.runs) {
      if (span.t0 > tEnd) break;
      const t1 = span.t1 === null ? clip : Math.min(span.t1, clip);
      if (t1 < view.t0) continue;
      const x0 = tl.x(span.t0, view);
      const x1 = Math.max(x0 + 1, tl.x(t1, view));
      if (x1 <= lastX1 && (x0 | 0) === (lastX1 | 0)) continue;
      ctx.fillStyle = span.lane.color;
      ctx.fillRect(x0, y, x1 - x0, h);
      lastX1 = x1;
    }
    // A process saying "I am on this core" as it emits an event: a tick.
    const ticks = core.ticks;
    let lastPx = -1;
    const tickH = sampled ? Math.max(3, h * 0.3) : h;
    const tickY = sampled ? y + h - tickH : y;
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
      ctx.fillStyle = tk.lane.color;
      ctx.fillRect(px, tickY, 2, tickH);
      if (sampled) {
        ctx.fillStyle = theme.text;
        ctx.fillRect(px, tickY, 2, 1);
      }
    }
    ctx.restore();
  });
  tl.nowLine(ctx, view, clip, theme, theme.axisH - 4, g.coresH, true);
}
