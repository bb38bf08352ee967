// Draws one RunModel on its two canvases: the core lanes and the process lanes.
//
// Runs in the browser, once per animation frame while something changed. Cost is bounded
// by pixels, not by events: each list is binary-searched to the visible window, and marks
// that would land on a pixel column already drawn for the same lane and shape are skipped
// (aggregated), so a 100,000-event run costs about what its visible pixels cost.
//
// `clip` is the run time being shown: the live "now", or the replay clock. Anything after
// it is not drawn, and anything still open at it is drawn up to it, so a replay and a live
// run are the same picture at the same instant.

import { firstAtOrAfter } from "./run_model.js";
import { drawTracks, TRACK_NAMES } from "./tracks.js";

/** Tick spacing for about one label every `px` pixels. */
const SIGNALS = { 1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM" };

export function niceStep(span, width, px = 90) {
  const raw = span / Math.max(1, width / px);
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

export function formatTime(t, step) {
  if (step < 0.1) {
    const decimals = step < 0.001 ? 2 : step < 0.01 ? 1 : 0;
    return `${(t * 1000).toFixed(decimals)} ms`;
  }
  const decimals = step < 1 ? 1 : 0;
  return `${t.toFixed(decimals)} s`;
}

export class Timeline {
  constructor(model, coresCanvas, procsCanvas) {
    this.model = model;
    this.cores = coresCanvas;
    this.procs = procsCanvas;
    this.scroll = 0; // first process lane shown (when lanes overflow)
    this.patterns = new Map();
    this.geom = null;
    this.drawnVersion = -1;
    this.sharedTracks = null; // when compared: the tracks every compared run shows
  }

  /** Backing stores follow CSS size × devicePixelRatio; returns the geometry. */
  layout(theme) {
    const dpr = window.devicePixelRatio || 1;
    const m = this.model;
    const coresH = theme.axisH + m.cores.length * theme.coreH + 2;
    if (this.cores.style.height !== `${coresH}px`) this.cores.style.height = `${coresH}px`;
    const width = Math.max(200, this.cores.clientWidth);
    // As tall as the lanes need at their largest, but no taller than the CSS max-height
    // allows (then lanes shrink, down to minLaneH, and then scroll).
    const own = m.tracks();
    const tracks = this.sharedTracks ? ["lock", "queue", "sold"].filter((t) => this.sharedTracks.has(t)) : own;
    const tracksH = tracks.length * theme.trackH;
    const wanted = `${Math.ceil(tracksH + 6 + Math.max(3, m.lanes.length) * theme.maxLaneH)}px`;
    if (this.procs.style.height !== wanted) this.procs.style.height = wanted;
    const procsH = Math.max(60, this.procs.clientHeight);
    for (const [canvas, h] of [[this.cores, coresH], [this.procs, procsH]]) {
      const w = Math.round(width * dpr);
      const hh = Math.round(h * dpr);
      if (canvas.width !== w || canvas.height !== hh) {
        canvas.width = w;
        canvas.height = hh;
      }
    }
    const avail = procsH - tracksH - 4;
    const n = Math.max(1, m.lanes.length);
    const laneH = Math.max(theme.minLaneH, Math.min(theme.maxLaneH, avail / n));
    const visible = Math.max(1, Math.floor(avail / laneH));
    const maxScroll = Math.max(0, m.lanes.length - visible);
    this.scroll = Math.min(Math.max(0, this.scroll), maxScroll);
    this.geom = { dpr, width, coresH, procsH, tracks, tracksH, laneTop: tracksH + 2, laneH,
      visible, maxScroll, gutter: theme.gutter, plotW: width - theme.gutter - 10 };
    return this.geom;
  }

  x(t, view) {
    const g = this.geom;
    return g.gutter + ((t - view.t0) / (view.t1 - view.t0)) * g.plotW;
  }

  tAt(x, view) {
    const g = this.geom;
    return view.t0 + ((x - g.gutter) / g.plotW) * (view.t1 - view.t0);
  }

  draw(view, clip, theme) {
    this.layout(theme);
    this._drawCores(view, clip, theme);
    this._drawProcs(view, clip, theme);
    this.drawnVersion = this.model.version;
  }

  _ctx(canvas) {
    const ctx = canvas.getContext("2d");
    ctx.setTransform(this.geom.dpr, 0, 0, this.geom.dpr, 0, 0);
    return ctx;
  }

  _grid(ctx, view, theme, top, bottom, labels) {
    const g = this.geom;
    const step = niceStep(view.t1 - view.t0, g.plotW);
    const first = Math.ceil(view.t0 / step) * step;
    ctx.font = theme.smallFont;
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    for (let t = first; t <= view.t1 + 1e-9; t += step) {
      const x = Math.round(this.x(t, view)) + 0.5;
      ctx.strokeStyle = theme.grid;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      if (labels) {
        ctx.fillStyle = theme.muted;
        ctx.fillText(formatTime(Math.abs(t) < 1e-12 ? 0 : t, step), x, theme.axisH / 2);
      }
    }
  }

  _nowLine(ctx, view, clip, theme, top, bottom, label) {
    if (!(clip < view.t1) || clip < view.t0) return;
    const x = Math.round(this.x(clip, view)) + 0.5;
    const endT = this.model.endT;
    if (endT !== null && clip >= endT) {
      // The run is over: grey out what comes after its end instead of a "now" line.
      const g = this.geom;
      ctx.fillStyle = "rgba(60, 64, 72, 0.07)";
      ctx.fillRect(x, top, g.gutter + g.plotW - x, bottom - top);
      ctx.fillStyle = theme.muted;
      ctx.fillRect(x - 0.5, top, 1, bottom - top);
      if (label) {
        ctx.font = theme.smallFont;
        ctx.textAlign = "left";
        ctx.textBaseline = "middle";
        ctx.fillText("end", x + 4, top + (bottom - top) / 2);
      }
      return;
    }
    ctx.strokeStyle = theme.now;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, bottom);
    ctx.stroke();
  }

  _drawCores(view, clip, theme) {
    const g = this.geom;
    const ctx = this._ctx(this.cores);
    const m = this.model;
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, g.width, g.coresH);
    this._grid(ctx, view, theme, theme.axisH - 4, g.coresH, true);
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
        const x0 = this.x(span.t0, view);
        const x1 = Math.max(x0 + 1, this.x(t1, view));
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
        const px = this.x(tk.t, view) | 0;
        // Next: the first tick of the next pixel column (the rest of this one is hidden).
        const next = firstAtOrAfter(ticks, this.tAt(px + 1, view));
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
    this._nowLine(ctx, view, clip, theme, theme.axisH - 4, g.coresH, true);
  }

  _pattern(ctx, color) {
    let p = this.patterns.get(color);
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
    this.patterns.set(color, p);
    return p;
  }

  laneY(index) {
    const g = this.geom;
    return g.laneTop + (index - this.scroll) * g.laneH;
  }

  _drawProcs(view, clip, theme) {
    const g = this.geom;
    const m = this.model;
    const ctx = this._ctx(this.procs);
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, g.width, g.procsH);
    this._grid(ctx, view, theme, 0, g.procsH, false);
    drawTracks(ctx, this, view, clip, theme);
    const h = g.laneH;
    const first = this.scroll;
    const last = Math.min(m.lanes.length, first + g.visible + 1);
    const labelEvery = h >= 11 ? 1 : Math.ceil(13 / h);
    for (let i = first; i < last; i++) {
      if ((i - first) % labelEvery === 0) this._label(ctx, m.lanes[i], this.laneY(i), h, clip, theme, labelEvery > 1);
    }
    // One clip for all lanes (a clip per lane costs more than the lane itself when lanes
    // are a pixel tall); marks may spill a little into the neighbouring lanes.
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.gutter, g.laneTop, g.plotW, g.procsH - g.laneTop);
    ctx.clip();
    for (let i = first; i < last; i++) {
      const y = this.laneY(i);
      if (h >= 6 && i % 2 === 1) {
        ctx.fillStyle = theme.laneAlt;
        ctx.fillRect(g.gutter, y, g.plotW, h);
      }
      this._lane(ctx, m.lanes[i], y, h, view, clip, theme);
    }
    ctx.restore();
    if (g.maxScroll > 0) {
      const trackTop = g.laneTop;
      const trackH = g.procsH - trackTop;
      const thumbH = Math.max(16, (trackH * g.visible) / m.lanes.length);
      const thumbY = trackTop + ((trackH - thumbH) * this.scroll) / g.maxScroll;
      ctx.fillStyle = theme.grid;
      ctx.fillRect(g.width - 6, trackTop, 4, trackH);
      ctx.fillStyle = theme.axis;
      ctx.fillRect(g.width - 6, thumbY, 4, thumbH);
    }
    this._nowLine(ctx, view, clip, theme, 0, g.procsH);
  }

  _label(ctx, lane, y, h, clip, theme, sparse) {
    const g = this.geom;
    ctx.font = sparse ? theme.smallFont : theme.font;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillStyle = lane.start !== null && lane.start <= clip ? theme.text : theme.axis;
    // Too long for the gutter: cut the middle, the end tells processes apart (…Worker-12).
    let name = lane.name;
    const maxW = g.gutter - 22;
    let cut = 1;
    while (name.length > 5 && ctx.measureText(name).width > maxW) {
      const keep = lane.name.length - cut;
      const head = Math.ceil(keep * 0.45);
      name = `${lane.name.slice(0, head)}…${lane.name.slice(lane.name.length - (keep - head))}`;
      cut += 1;
    }
    ctx.fillText(name, g.gutter - 16, y + h / 2);
    ctx.fillStyle = lane.color;
    const s = Math.min(8, Math.max(3, h - 2));
    ctx.fillRect(g.gutter - 12, y + (h - s) / 2, s, s);
  }

  _lane(ctx, lane, y, h, view, clip, theme) {
    if (lane.start === null || lane.start > clip) return;
    const tEnd = Math.min(view.t1, clip);
    const end = lane.exit !== null && lane.exit <= clip ? lane.exit : clip;
    const color = lane.color;
    // Alive: a thin bar from start to exit.
    const x0 = this.x(lane.start, view);
    const x1 = Math.max(x0 + 1, this.x(end, view));
    ctx.globalAlpha = 0.4;
    ctx.fillStyle = color;
    const thin = h < 7;
    ctx.fillRect(x0, thin ? y : y + h * 0.32, x1 - x0, thin ? h : h * 0.36);
    ctx.globalAlpha = 1;
    // Running on a core, as the kernel saw it: a dark strip along the bottom.
    if (lane.onCpu.length) {
      ctx.fillStyle = theme.text;
      const sh = Math.max(1, h * 0.22);
      let lastX = -1;
      for (const s of lane.onCpu) {
        if (s.t0 > tEnd) break;
        const t1 = s.t1 === null ? clip : Math.min(s.t1, clip);
        if (t1 < view.t0) continue;
        const a = this.x(s.t0, view);
        const b = Math.max(a + 1, this.x(t1, view));
        if (b <= lastX) continue;
        ctx.fillRect(a, y + h - sh, b - a, sh);
        lastX = b;
      }
    }
    // Waiting (hatched) and holding / working (solid).
    for (const s of lane.spans) {
      if (s.t0 > tEnd) break;
      const t1 = s.t1 === null ? clip : Math.min(s.t1, clip);
      if (t1 < view.t0) continue;
      const a = this.x(s.t0, view);
      const b = Math.max(a + 1.5, this.x(t1, view));
      const inset = h >= 8 ? 1 : 0;
      if ((s.kind === "wait" || s.kind === "join") && h < 4) {
        // Too thin for a texture to read: waiting is the pale fill, holding the full one.
        ctx.globalAlpha = 0.3;
        ctx.fillStyle = color;
        ctx.fillRect(a, y, b - a, h);
        ctx.globalAlpha = 1;
      } else if (s.kind === "wait" || s.kind === "join") {
        ctx.fillStyle = this._pattern(ctx, color);
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
    }
    this._zombie(ctx, lane, y, h, view, clip, theme);
    this._marks(ctx, lane, y, h, view, tEnd, theme);
    for (const r of lane.reparents) {
      if (r.t > tEnd || r.t < view.t0) continue;
      const x = this.x(r.t, view);
      this._glyph(ctx, "↱", x, y, h, theme.text, theme, true);
      if (h >= 12) this._note(ctx, `re-parented ${r.from} → ${r.to}`, x + 8, y, h, theme);
    }
    if (lane.exit !== null && lane.exit <= clip && lane.exitcode !== 0 && lane.exitcode !== null) {
      // Killed by a signal (negative exit code): a black ✕ and the signal's name; an error
      // exit (positive): a red ✕.
      const x = this.x(lane.exit, view);
      const signal = lane.exitcode < 0;
      this._shape(ctx, "cross", x, y + h / 2, Math.max(4, Math.min(12, h)), signal ? theme.text : theme.error, theme);
      if (signal && h >= 12) this._note(ctx, SIGNALS[-lane.exitcode] || `signal ${-lane.exitcode}`, x + 8, y, h, theme);
    }
  }

  _zombie(ctx, lane, y, h, view, clip, theme) {
    if (lane.tid && lane.zombieSince === null) return; // a thread is never reaped on its own
    const since = lane.zombieSince !== null ? Math.min(lane.zombieSince, lane.exit ?? Infinity) : lane.exit;
    if (since === null || since > clip) return;
    const until = lane.reap !== null && lane.reap <= clip ? lane.reap : clip;
    if (until - since <= 0) return;
    if (lane.reap === null && lane.zombieSince === null && this.model.endT !== null) return;
    const a = this.x(since, view);
    const b = Math.max(a + 1, this.x(until, view));
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
      ctx.fillText(b - a > 70 ? "zombie" : "Z", (a + b) / 2, y + h / 2);
    }
  }

  _marks(ctx, lane, y, h, view, tEnd, theme) {
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
        const px = this.x(e.t, view);
        if (asDot) {
          ctx.fillRect(px | 0, y, 1.5, dots ? h : Math.max(2, h * 0.5));
        } else {
          this._shape(ctx, shape, px, y + h / 2, size, shape === "cross" ? theme.error : theme.text, theme);
        }
        const next = firstAtOrAfter(marks, this.tAt(px + gap, view));
        i = next > i ? next : i + 1;
      }
    }
  }

  _note(ctx, text, x, y, h, theme) {
    ctx.font = theme.smallFont;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const w = ctx.measureText(text).width;
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(x - 2, y + h / 2 - 7, w + 4, 14);
    ctx.fillStyle = theme.text;
    ctx.fillText(text, x, y + h / 2);
  }

  _glyph(ctx, glyph, x, y, h, color, theme, bold) {
    ctx.fillStyle = color;
    ctx.font = bold ? `bold ${Math.max(12, Math.min(20, h + 4))}px system-ui, sans-serif` : theme.font;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(glyph, x, y + h / 2);
  }

  _shape(ctx, shape, x, cy, s, color, theme) {
    const r = s / 2;
    ctx.fillStyle = color;
    ctx.strokeStyle = theme.bg;
    ctx.lineWidth = 1;
    ctx.beginPath();
    switch (shape) {
      case "star":
        for (let k = 0; k < 10; k++) {
          const rad = k % 2 ? r * 0.45 : r * 1.15;
          const a = -Math.PI / 2 + (k * Math.PI) / 5;
          ctx.lineTo(x + rad * Math.cos(a), cy + rad * Math.sin(a));
        }
        break;
      case "up": case "upAlert":
        ctx.moveTo(x, cy - r); ctx.lineTo(x + r, cy + r); ctx.lineTo(x - r, cy + r);
        break;
      case "down": case "downAlert":
        ctx.moveTo(x - r, cy - r); ctx.lineTo(x + r, cy - r); ctx.lineTo(x, cy + r);
        break;
      case "ring":
        ctx.arc(x, cy, r * 0.6, 0, 2 * Math.PI);
        ctx.closePath();
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.5;
        ctx.stroke();
        return;
      case "cross": {
        ctx.strokeStyle = color;
        ctx.lineWidth = Math.max(2, s / 4);
        ctx.moveTo(x - r, cy - r); ctx.lineTo(x + r, cy + r);
        ctx.moveTo(x + r, cy - r); ctx.lineTo(x - r, cy + r);
        ctx.stroke();
        return;
      }
      default: // diamond
        ctx.moveTo(x, cy - r); ctx.lineTo(x + r * 0.8, cy); ctx.lineTo(x, cy + r); ctx.lineTo(x - r * 0.8, cy);
    }
    ctx.closePath();
    ctx.fill();
    if (s >= 7) ctx.stroke();
    if (shape === "upAlert" || shape === "downAlert") {
      ctx.strokeStyle = theme.error;
      ctx.lineWidth = 2;
      ctx.stroke();
    }
  }
}

export { TRACK_NAMES };
