// A traced program's objects as tracks above the lanes, one per object that was used: a
// lock's holder bands (in the holder's colour, a row per holder at once), how many wait
// and a semaphore's value; a queue's depth; an Event set or clear.
//
// Runs in the browser, called by tracks.js for each frame, below the lesson's tracks (a
// program has none). The data is objects.js's; the step charts and the Full / Empty ticks
// are tracks.js's (`steps`, `fullOrEmpty`).

import { t } from "./i18n.js";

/** Draw each object's track from y = top; `steps` and `label` are tracks.js's. */
export function drawObjectTracks(ctx, tl, view, clip, theme, top, { steps, label, fullOrEmpty }) {
  const g = tl.geom;
  const objects = tl.model.objects;
  g.objTracks.forEach((o, i) => {
    const y = top + i * theme.objTrackH;
    const h = theme.objTrackH - 6;
    ctx.fillStyle = theme.laneAlt;
    ctx.fillRect(g.gutter, y + 2, g.plotW, h);
    gutterLabel(ctx, theme, g.gutter, y + 2, h, objects.nameOf(o), objects.typeOf(o));
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.gutter, y, g.plotW, theme.objTrackH);
    ctx.clip();
    const box = { y: y + 2, h };
    const kind = objects.trackOf(o);
    let said = kind === "lock" ? lockTrack(ctx, tl, view, clip, theme, box, o, steps)
      : kind === "queue" ? queueTrack(ctx, tl, view, clip, theme, box, o, steps, fullOrEmpty)
        : eventTrack(ctx, tl, view, clip, theme, box, o, steps);
    const counted = objects.tallyOf(o);
    if (counted) said = [said, t("%(what)s counted, not drawn", { what: counted })].filter(Boolean).join(" · ");
    // A phone's plot is too narrow for words over the track; the tally is said under it too.
    if (g.plotW >= 360 || counted) label(ctx, tl, theme, box, said, counted ? theme.error : null);
    ctx.restore();
  });
}

/** The track's name in the gutter (cut to fit), and under it its type, smaller. */
function gutterLabel(ctx, theme, gutter, y, h, name, type) {
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillStyle = theme.text;
  ctx.font = theme.font;
  const twoLines = h >= 22;
  ctx.fillText(cut(ctx, name, gutter - 12), gutter - 8, twoLines ? y + h * 0.3 : y + h / 2);
  if (!twoLines) return;
  ctx.font = theme.smallFont;
  ctx.fillStyle = theme.muted;
  ctx.fillText(cut(ctx, type, gutter - 12), gutter - 8, y + h * 0.8);
}

function cut(ctx, text, maxW) {
  if (ctx.measureText(text).width <= maxW) return text;
  let shown = text;
  while (shown.length > 1 && ctx.measureText(`${shown}…`).width > maxW) shown = shown.slice(0, -1);
  return `${shown}…`;
}

/** Waiters as a filled step chart; over it the holders' bands, one row per holder at once;
 * a semaphore's value as a line. Returns what its label says. */
/** How many wait for `o`, as a grey step chart filling the box; the most at once. */
function waiters(ctx, tl, view, clip, theme, box, o, steps) {
  let waiting = 0;
  let most = 0;
  for (const p of o.waiters) {
    waiting += p.delta;
    if (waiting > most) most = waiting;
  }
  steps(ctx, tl, view, clip, o.waiters, (p, v) => v + p.delta, box, most, theme.waiters, null);
  return most;
}

function lockTrack(ctx, tl, view, clip, theme, box, o, steps) {
  const most = waiters(ctx, tl, view, clip, theme, box, o, steps);
  const rows = Math.max(1, o.slots.length);
  const bandH = Math.max(3, (box.h * 0.5) / rows);
  o.slotHolds.forEach((holds, slot) => {
    tl.fillSpans(ctx, holds, view, clip, box.y + slot * bandH, bandH - (rows > 1 ? 1 : 0), (s) => s.lane.color);
  });
  const words = [];
  if (o.value0 !== null || o.values.length) {
    let top = o.value0 ?? 0;
    for (const p of o.values) if (p.value > top) top = p.value;
    const start = o.value0 ?? o.values[0]?.value ?? 0;
    steps(ctx, tl, view, clip, o.values, (p) => p.value, box, top, null, theme.text, start);
    words.push(t("value %(v)s", { v: valueAt(o, Math.min(clip, view.t1)) }));
  }
  if (most) words.push(t("up to %(n)s waiting", { n: most }));
  return words.join(" · ");
}

function valueAt(o, at) {
  let v = o.value0 ?? 0;
  for (const p of o.values) {
    if (p.t > at) break;
    v = p.value;
  }
  return v;
}

/** The depth, filled, with a red tick at each Full / Empty; the maxsize as a dashed line. */
function queueTrack(ctx, tl, view, clip, theme, box, o, steps, fullOrEmpty) {
  const pts = o.depth;
  let max = Math.max(1, o.maxsize > 0 ? o.maxsize : 0);
  for (const p of pts) if (p.depth > max) max = p.depth;
  steps(ctx, tl, view, clip, pts, (p) => p.depth, box, max, theme.waiters, theme.text);
  fullOrEmpty(ctx, tl, view, clip, theme, box, pts);
  if (o.maxsize > 0) {
    const y = Math.round(box.y + box.h - (o.maxsize / max) * (box.h - 2)) + 0.5;
    ctx.setLineDash([5, 3]);
    ctx.strokeStyle = theme.stock;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(tl.geom.gutter, y);
    ctx.lineTo(tl.geom.gutter + tl.geom.plotW, y);
    ctx.stroke();
    ctx.setLineDash([]);
    return t("max depth %(n)s of maxsize %(size)s", { n: maxDepth(pts), size: o.maxsize });
  }
  return t("max depth %(n)s", { n: maxDepth(pts) });
}

function maxDepth(pts) {
  let most = 0;
  for (const p of pts) if (p.depth > most) most = p.depth;
  return most;
}

/** Set: a full band, in the colour of the process that set it; clear: empty. Waiters under it. */
function eventTrack(ctx, tl, view, clip, theme, box, o, steps) {
  const most = waiters(ctx, tl, view, clip, theme, box, o, steps);
  const setSpans = [];
  let open = null;
  for (const p of o.states) {
    if (p.set && !open) {
      open = { t0: p.t, t1: null, lane: p.lane };
      setSpans.push(open);
    } else if (!p.set && open) {
      open.t1 = p.t;
      open = null;
    }
  }
  tl.fillSpans(ctx, setSpans, view, clip, box.y, Math.max(4, box.h * 0.4), (s) => s.lane?.color || theme.text);
  const at = Math.min(clip, view.t1);
  const now = setSpans.some((s) => s.t0 <= at && (s.t1 === null || at < s.t1));
  return [now ? t("set") : t("not set"), most ? t("up to %(n)s waiting", { n: most }) : ""].filter(Boolean).join(" · ");
}

/** What the pointer over an object's track shows at `at`: who holds it and how many wait,
 * a queue's depth, an Event's state. Its rows' keys are hover.js's (translated as shown). */
export function objectHover(objects, o, at, fmtT) {
  const kind = objects.trackOf(o);
  const title = t("%(name)s (%(type)s) at %(at)s", { name: objects.nameOf(o), type: objects.typeOf(o), at: fmtT(at) });
  let waiting = 0;
  for (const p of o.waiters) if (p.t <= at) waiting += p.delta;
  if (kind === "queue") {
    let depth = 0;
    for (const p of o.depth) if (p.t <= at) depth = p.depth;
    return { title, rows: [["depth", depth], ["waiting", waiting]] };
  }
  if (kind === "event") {
    let set = false;
    for (const p of o.states) if (p.t <= at) set = p.set;
    return { title: `${title} · ${set ? t("set") : t("not set")}`, rows: [["waiting", waiting]] };
  }
  const holders = o.holds.filter((s) => s.t0 <= at && (s.t1 === null || at <= s.t1)).map((s) => s.lane.name);
  return { title, rows: [["held by", holders.length ? holders.join(", ") : t("nobody")], ["waiting", waiting]] };
}
