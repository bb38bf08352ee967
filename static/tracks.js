// The shared-resource tracks above the process lanes: who holds the lock and how many wait
// for it, the queue's depth, tickets sold against the stock.
//
// Runs in the browser, called by timeline.js for each frame. Each track is a step chart
// of one quantity over the run's time; they are what a lesson is about (the lock passing
// from buyer to buyer, the queue filling up, the sales overshooting the stock), drawn once
// for the whole run instead of being read off a hundred lanes. Which of them a run shows
// is its lesson's choice (the spec's `tracks`, read by RunModel.tracks()).

import { firstAtOrAfter } from "./time_sorted.js";
import { t } from "./i18n.js";
import { drawObjectTracks } from "./object_tracks.js";

export function drawTracks(ctx, tl, view, clip, theme) {
  const g = tl.geom;
  g.tracks.forEach((name, i) => {
    const y = i * theme.trackH;
    const h = theme.trackH - 6;
    ctx.fillStyle = theme.laneAlt;
    ctx.fillRect(g.gutter, y + 2, g.plotW, h);
    ctx.fillStyle = theme.text;
    ctx.font = theme.font;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(name === "lock" ? t("Lock") : name === "queue" ? t("Queue") : t("Sold"), g.gutter - 8, y + 2 + h / 2);
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.gutter, y, g.plotW, theme.trackH);
    ctx.clip();
    const box = { y: y + 2, h };
    if (name === "lock") lockTrack(ctx, tl, view, clip, theme, box);
    else if (name === "queue") queueTrack(ctx, tl, view, clip, theme, box);
    else soldTrack(ctx, tl, view, clip, theme, box);
    ctx.restore();
  });
  drawObjectTracks(ctx, tl, view, clip, theme, g.tracks.length * theme.trackH, { steps, label, fullOrEmpty });
  if (g.tracks.length || g.objTracks.length) {
    ctx.fillStyle = theme.axis;
    ctx.fillRect(0, g.tracksH - 1, g.width, 1);
  }
}

/** Step chart of a running sum (or of given values) up to clip; returns the max seen. */
function steps(ctx, tl, view, clip, points, value, box, max, fill, stroke, start = 0) {
  const tEnd = Math.min(view.t1, clip);
  const yOf = (v) => box.y + box.h - (v / Math.max(1, max)) * (box.h - 2);
  ctx.beginPath();
  let x = tl.x(Math.max(view.t0, 0), view);
  let v = start;
  let started = false;
  for (const p of points) {
    if (p.t > tEnd) break;
    const nv = value(p, v);
    if (p.t < view.t0) {
      v = nv;
      continue;
    }
    const px = tl.x(p.t, view);
    if (!started) {
      ctx.moveTo(x, yOf(v));
      started = true;
    }
    ctx.lineTo(px, yOf(v));
    ctx.lineTo(px, yOf(nv));
    v = nv;
    x = px;
  }
  if (!started) ctx.moveTo(x, yOf(v));
  const xEnd = tl.x(tEnd, view);
  ctx.lineTo(xEnd, yOf(v));
  if (fill) {
    ctx.lineTo(xEnd, box.y + box.h);
    ctx.lineTo(tl.x(Math.max(view.t0, 0), view), box.y + box.h);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
  }
  if (stroke) {
    ctx.strokeStyle = stroke;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
  return v;
}

function lockTrack(ctx, tl, view, clip, theme, box) {
  const m = tl.model;
  let max = 0;
  let w = 0;
  for (const p of m.lock.points) {
    w += p.delta;
    if (w > max) max = w;
  }
  steps(ctx, tl, view, clip, m.lock.points, (p, v) => v + p.delta, box, max, theme.waiters, null);
  // The holder: a band in the holding process's colour along the top.
  tl.fillSpans(ctx, m.lock.holds, view, clip, box.y, Math.max(4, box.h * 0.4), (s) => s.lane.color);
  if (!m.lock.holds.length && !m.lock.points.length) {
    label(ctx, tl, theme, box, t("no lock in this run"), theme.error);
    return;
  }
  label(ctx, tl, theme, box, max ? t("up to %(n)s waiting", { n: max }) : "");
}

function queueTrack(ctx, tl, view, clip, theme, box) {
  const pts = tl.model.queue.points;
  let max = 1;
  for (const p of pts) if (p.depth !== null && p.depth > max) max = p.depth;
  steps(ctx, tl, view, clip, pts, (p, v) => (p.depth === null ? v : p.depth), box, max,
    theme.waiters, theme.text);
  fullOrEmpty(ctx, tl, view, clip, theme, box, pts);
  label(ctx, tl, theme, box, t("max depth %(n)s", { n: max }));
}

/** A red tick across the track at each queue.Full / queue.Empty among `pts`. */
function fullOrEmpty(ctx, tl, view, clip, theme, box, pts) {
  const tEnd = Math.min(view.t1, clip);
  for (let i = firstAtOrAfter(pts, view.t0); i < pts.length; i++) {
    const p = pts[i];
    if (p.t > tEnd) break;
    if (p.kind === "queue.full" || p.kind === "queue.empty") {
      ctx.fillStyle = theme.error;
      ctx.fillRect(tl.x(p.t, view) - 1, box.y, 2, box.h);
    }
  }
}

function soldTrack(ctx, tl, view, clip, theme, box) {
  const m = tl.model;
  const stock = m.stock() ?? 0; // the lesson names the param (its track's stock_param)
  let sold = 0;
  for (const p of m.sold.points) if (p.t <= clip) sold += 1;
  const max = Math.max(stock, sold, 1) * 1.1;
  const yOf = (v) => box.y + box.h - (v / max) * (box.h - 2);
  const pts = m.sold.points;
  // Sales beyond the stock, filled: the oversold tickets.
  if (sold > stock) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(tl.geom.gutter, box.y, tl.geom.plotW, yOf(stock) - box.y);
    ctx.clip();
    steps(ctx, tl, view, clip, pts, (p, v) => v + 1, { y: box.y, h: box.h }, max, theme.oversold, null);
    ctx.restore();
  }
  steps(ctx, tl, view, clip, pts, (p, v) => v + 1, box, max, null, theme.text);
  ctx.setLineDash([5, 3]);
  ctx.strokeStyle = theme.stock;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(tl.geom.gutter, Math.round(yOf(stock)) + 0.5);
  ctx.lineTo(tl.geom.gutter + tl.geom.plotW, Math.round(yOf(stock)) + 0.5);
  ctx.stroke();
  ctx.setLineDash([]);
  const over = Math.max(0, sold - stock);
  label(ctx, tl, theme, box, t("sold %(sold)s · stock %(stock)s", { sold, stock }) + (over ? t(" · %(n)s oversold", { n: over }) : ""),
    over ? theme.error : theme.text);
}

function label(ctx, tl, theme, box, text, color) {
  if (!text) return;
  ctx.font = theme.font;
  ctx.textAlign = "right";
  ctx.textBaseline = "top";
  const x = tl.geom.gutter + tl.geom.plotW - 4;
  const w = ctx.measureText(text).width;
  ctx.fillStyle = "rgba(255,255,255,0.85)";
  ctx.fillRect(x - w - 4, box.y + 1, w + 8, 16);
  ctx.fillStyle = color || theme.muted;
  ctx.fillText(text, x, box.y + 3);
}
