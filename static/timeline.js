// Draws one RunModel on its two canvases: the core lanes and the process lanes (the
// frame: geometry, time grid, tracks, labels; core_lanes.js and process_lanes.js draw the
// lanes themselves).
//
// Runs in the browser, once per animation frame while something changed. Cost is bounded
// by pixels, not by events: each list is binary-searched to the visible window, and marks
// that would land on a pixel column already drawn for the same lane and shape are skipped
// (aggregated), so a 100,000-event run costs about what its visible pixels cost.
//
// `clip` is the run time being shown: the live "now", or the replay clock. Anything after
// it is not drawn, and anything still open at it is drawn up to it, so a replay and a live
// run are the same picture at the same instant.

import { drawTracks } from "./tracks.js";
import { drawCores } from "./core_lanes.js";
import { drawLane } from "./process_lanes.js";
import { trackKinds } from "./page_facts.js";
import { t } from "./i18n.js";

/** Tick spacing for about one label every `px` pixels. */
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

const MOMENT_H = 19; // the height of one key moment's label in the band above the lanes

/** `name` cut in the middle to fit `maxW` pixels: the end tells processes apart, the start
 * says what they are. Whole words go first (ForkPoolWorker-10:2 -> Fork…Worker-10:2), then
 * letters. */
export function abbreviate(ctx, name, maxW) {
  if (ctx.measureText(name).width <= maxW) return name;
  const words = name.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[^A-Za-z\d]+/g) || [name];
  for (let drop = 1; drop < words.length - 1; drop++) {
    for (let at = 1; at + drop < words.length; at++) {
      const cut = `${words.slice(0, at).join("")}…${words.slice(at + drop).join("")}`;
      if (ctx.measureText(cut).width <= maxW) return cut;
    }
  }
  for (let keep = name.length - 1; keep > 4; keep--) {
    const tail = Math.ceil(keep * 0.6);
    const cut = `${name.slice(0, keep - tail)}…${name.slice(name.length - tail)}`;
    if (ctx.measureText(cut).width <= maxW) return cut;
  }
  return `…${name.slice(-4)}`;
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
    this.moments = []; // the lesson's key moments in this run, once it has ended (key_moment.js)
    this.momentPx = []; // ... where they were last drawn: [{x0, x1, label}] (for the tests)
    // The lane labels: a click on a process with helper threads folds or unfolds them;
    // the pointer over a label shows its whole name (a long one is cut in the middle).
    procsCanvas.addEventListener("click", (event) => {
      const lane = this.labelAt(event.offsetX, event.offsetY);
      if (lane && !lane.tid && lane.helpers) {
        this.model.toggleFold(lane.pid);
        this.model.version += 1;
        this.procs.dispatchEvent(new CustomEvent("procscope:redraw", { bubbles: true }));
      }
    });
    procsCanvas.addEventListener("mousemove", (event) => {
      const lane = this.labelAt(event.offsetX, event.offsetY);
      const title = lane ? this.labelTitle(lane) : "";
      if (this.procs.title !== title) this.procs.title = title;
      this.procs.style.cursor = lane && !lane.tid && lane.helpers ? "pointer" : "";
    });
  }

  /** The lane whose label is at (x, y) of the process canvas (CSS pixels), or null. */
  labelAt(x, y) {
    const g = this.geom;
    if (!g || x >= g.gutter || y < g.laneTop) return null;
    return this.model.rows()[this.scroll + Math.floor((y - g.laneTop) / g.laneH)] || null;
  }

  /** A label's whole name, and what a click on it does. */
  labelTitle(lane) {
    let text = lane.tid ? lane.name : `${lane.name} (pid ${lane.pid})`;
    if (!lane.tid && lane.helpers) {
      const n = lane.helpers;
      text += this.model.unfolded.has(lane.pid)
        ? ` · click to fold its ${n} multiprocessing helper thread${n > 1 ? "s" : ""} back into its lane`
        : ` · ${n} multiprocessing helper thread${n > 1 ? "s" : ""} drawn in this lane (their CPU on the core lanes): click to show them`;
    }
    return text;
  }

  /** Backing stores follow CSS size × devicePixelRatio; returns the geometry. */
  layout(theme) {
    const dpr = window.devicePixelRatio || 1;
    const m = this.model;
    // One lane per core, and under them how many cores the run kept busy (core_lanes.js).
    const coresH = theme.axisH + (m.cores.length + 1) * theme.coreH + 2;
    if (this.cores.style.height !== `${coresH}px`) this.cores.style.height = `${coresH}px`;
    const width = Math.max(200, this.cores.clientWidth);
    // As tall as the lanes need at their largest, but no taller than the CSS max-height
    // allows (then lanes shrink, down to minLaneH, and then scroll).
    const own = m.tracks();
    const tracks = this.sharedTracks ? trackKinds().filter((t) => this.sharedTracks.has(t)) : own;
    // Below the lesson's tracks, a traced program's objects that were used (objects.js).
    // They add to the height the lanes may take (app.css: --objects-h), so as not to squeeze them.
    const objTracks = m.objects.tracks();
    const objectsH = objTracks.length * theme.objTrackH;
    const tracksH = tracks.length * theme.trackH + objectsH;
    if (this.procs.style.getPropertyValue("--objects-h") !== `${objectsH}px`) this.procs.style.setProperty("--objects-h", `${objectsH}px`);
    const rows = m.rows();
    // A band for the key moments' labels, between the tracks and the lanes.
    const momentsH = this.moments.length * MOMENT_H;
    const wanted = `${Math.ceil(tracksH + momentsH + 6 + Math.max(3, rows.length) * theme.maxLaneH)}px`;
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
    const avail = procsH - tracksH - momentsH - 4;
    const n = Math.max(1, rows.length);
    const laneH = Math.max(theme.minLaneH, Math.min(theme.maxLaneH, avail / n));
    const visible = Math.max(1, Math.floor(avail / laneH));
    const maxScroll = Math.max(0, rows.length - visible);
    this.scroll = Math.min(Math.max(0, this.scroll), maxScroll);
    this.geom = { dpr, width, coresH, procsH, tracks, objTracks, tracksH, momentsH, laneTop: tracksH + momentsH + 2, laneH,
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
    drawCores(this, view, clip, theme);
    this._drawProcs(view, clip, theme);
    this.drawnVersion = this.model.version;
  }

  context(canvas) {
    const ctx = canvas.getContext("2d");
    ctx.setTransform(this.geom.dpr, 0, 0, this.geom.dpr, 0, 0);
    return ctx;
  }

  grid(ctx, view, theme, top, bottom, labels) {
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

  /**
   * Spans {t0, t1} (sorted by t0; t1 null while open) as bars from y to y + h, clipped to
   * the view and to `clip`, where an open span ends. A span that would only repaint what
   * the previous one already covered is skipped: thousands of spans cost what their
   * pixels cost. `color(span)` gives each its fill; without it, the caller's fillStyle.
   */
  fillSpans(ctx, spans, view, clip, y, h, color = null) {
    const tEnd = Math.min(view.t1, clip);
    let lastX = -1;
    for (const s of spans) {
      if (s.t0 > tEnd) break;
      const t1 = s.t1 === null ? clip : Math.min(s.t1, clip);
      if (t1 < view.t0) continue;
      const a = this.x(s.t0, view);
      const b = Math.max(a + 1, this.x(t1, view));
      if (b <= lastX) continue;
      if (color) ctx.fillStyle = color(s);
      ctx.fillRect(a, y, b - a, h);
      lastX = b;
    }
  }

  nowLine(ctx, view, clip, theme, top, bottom, label) {
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
        ctx.fillText(t("end"), x + 4, top + (bottom - top) / 2);
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

  laneY(index) {
    const g = this.geom;
    return g.laneTop + (index - this.scroll) * g.laneH;
  }

  _drawProcs(view, clip, theme) {
    const g = this.geom;
    const m = this.model;
    const ctx = this.context(this.procs);
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, g.width, g.procsH);
    this.grid(ctx, view, theme, 0, g.procsH, false);
    drawTracks(ctx, this, view, clip, theme);
    const h = g.laneH;
    const rows = m.rows();
    const first = this.scroll;
    const last = Math.min(rows.length, first + g.visible + 1);
    const labelEvery = h >= 11 ? 1 : Math.ceil(13 / h);
    for (let i = first; i < last; i++) {
      if ((i - first) % labelEvery === 0) this._label(ctx, rows[i], this.laneY(i), h, clip, theme, labelEvery > 1);
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
      drawLane(this, ctx, rows[i], y, h, view, clip, theme);
    }
    ctx.restore();
    this._moments(ctx, view, clip, theme);
    if (g.maxScroll > 0) {
      const trackTop = g.laneTop;
      const trackH = g.procsH - trackTop;
      const thumbH = Math.max(16, (trackH * g.visible) / rows.length);
      const thumbY = trackTop + ((trackH - thumbH) * this.scroll) / g.maxScroll;
      ctx.fillStyle = theme.grid;
      ctx.fillRect(g.width - 6, trackTop, 4, trackH);
      ctx.fillStyle = theme.axis;
      ctx.fillRect(g.width - 6, thumbY, 4, thumbH);
    }
    this.nowLine(ctx, view, clip, theme, 0, g.procsH);
  }

  _label(ctx, lane, y, h, clip, theme, sparse) {
    const g = this.geom;
    ctx.font = sparse ? theme.smallFont : theme.font;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillStyle = lane.start !== null && lane.start <= clip ? theme.text : theme.axis;
    // A process with helper threads: ▸ (folded into its lane) or ▾ (shown), a click away.
    const fold = !lane.tid && lane.helpers ? (this.model.unfolded.has(lane.pid) ? "▾ " : "▸ ") : "";
    const name = abbreviate(ctx, lane.name, g.gutter - 22 - (fold ? ctx.measureText(fold).width : 0));
    ctx.fillText(fold + name, g.gutter - 16, y + h / 2);
    ctx.fillStyle = lane.color;
    const s = Math.min(8, Math.max(3, h - 2));
    ctx.fillRect(g.gutter - 12, y + (h - s) / 2, s, s);
  }

  /** The lesson's key moments: a bracket over the lanes from one event to the other, and
   * what it means, written inside the canvas (the label moves left or right to fit). */
  _moments(ctx, view, clip, theme) {
    const g = this.geom;
    this.momentPx = [];
    const right = g.gutter + g.plotW;
    this.moments.forEach((mo, k) => {
      if (mo.t0 > clip) return;
      const x0 = this.x(mo.t0, view);
      const x1 = this.x(Math.min(mo.t1, clip), view);
      if (x1 < g.gutter || x0 > right) return;
      const y = g.tracksH + 1 + k * MOMENT_H;
      ctx.save();
      ctx.strokeStyle = theme.now;
      ctx.fillStyle = theme.now;
      ctx.lineWidth = 2;
      ctx.setLineDash([4, 3]);
      for (const x of [x0, x1]) {
        if (x < g.gutter || x > right) continue;
        ctx.beginPath();
        ctx.moveTo(Math.round(x) + 0.5, y + 8);
        ctx.lineTo(Math.round(x) + 0.5, g.procsH);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      const a = Math.max(g.gutter, x0);
      const b = Math.min(right, x1);
      ctx.beginPath();
      ctx.moveTo(a, y + 8);
      ctx.lineTo(b, y + 8);
      ctx.stroke();
      ctx.font = theme.font;
      // Wider than the plot (a phone, a compared run's panel): cut at the end with "…"
      // rather than past the canvas's edge; the Key moment button's title has it whole.
      let text = mo.label;
      const room = g.plotW - 14;
      if (ctx.measureText(text).width > room) {
        while (text.length > 1 && ctx.measureText(`${text}…`).width > room) text = text.slice(0, -1);
        text = `${text.trimEnd()}…`;
      }
      const w = ctx.measureText(text).width + 10;
      // Centred over the bracket, and kept inside the plot.
      let lx = (a + b) / 2 - w / 2;
      lx = Math.max(g.gutter + 2, Math.min(right - w - 2, lx));
      ctx.fillStyle = "rgba(255, 255, 255, 0.92)";
      ctx.fillRect(lx, y, w, 15);
      ctx.strokeStyle = theme.now;
      ctx.lineWidth = 1;
      ctx.strokeRect(lx + 0.5, y + 0.5, w - 1, 14);
      ctx.fillStyle = theme.text;
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(text, lx + 5, y + 8);
      ctx.restore();
      this.momentPx.push({ x0, x1, label: mo.label, shown: text, lx, w });
    });
  }
}

