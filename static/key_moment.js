// A lesson's key moments (its spec's `key_moments`, from GET /api/experiments): found in a
// finished run's events, with their labels written.
//
// Runs in the browser (and under node --test: tests/js/key_moment.test.js). Pure data: the
// page zooms to the moments (view.js's View.focus) and timeline.js draws each as a bracket
// with its label. The browser knows no lesson by name: the spec says which events.

import { lang, own } from "./i18n.js";

/** Does event `e` (on `lane`) match a moment's side {kind, proc, role, text, data}? */
export function matches(e, lane, side) {
  if (e.kind !== side.kind) return false;
  const name = lane?.name ?? e.proc ?? "";
  if (side.proc !== undefined) {
    const negate = side.proc.startsWith("!");
    const want = negate ? side.proc.slice(1) : side.proc;
    const hit = want.endsWith("*") ? name.startsWith(want.slice(0, -1)) || (e.proc ?? "").startsWith(want.slice(0, -1))
      : name === want || e.proc === want;
    if (hit === negate) return false;
  }
  if (side.role !== undefined && (lane?.role ?? null) !== side.role) return false;
  if (side.text !== undefined && !String(e.data?.text ?? "").startsWith(side.text)) return false;
  for (const [k, v] of Object.entries(side.data || {})) {
    if (JSON.stringify(e.data?.[k]) !== JSON.stringify(v)) return false;
  }
  return true;
}

/** The event a side names: its nth match in time (1 the first, -1 the last), or null. */
export function findEvent(model, side) {
  const found = [];
  for (const lane of model.lanes) {
    for (const e of lane.marks) if (matches(e, lane, side)) found.push(e);
    // Span kinds (lock.*, join.*, task.*, wait.*) are kept on their spans, not as marks.
    for (const s of lane.spans) {
      for (const e of [s.e0, s.e1]) if (e && matches(e, lane, side)) found.push(e);
    }
  }
  if (!found.length) return null;
  found.sort((a, b) => a.t - b.t || a.seq - b.seq);
  const unique = found.filter((e, i) => i === 0 || e !== found[i - 1]);
  const nth = side.nth ?? 1;
  return (nth > 0 ? unique[nth - 1] : unique[unique.length + nth]) ?? null;
}

function fmt(value) {
  if (value === undefined || value === null) return "?";
  if (Array.isArray(value)) return value.map(fmt).join(", ");
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toFixed(3));
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The label template with its fields filled in. */
export function fillLabel(template, { t0, t1, start, end, result, depthMax }) {
  const gap = t1 - t0;
  return template.replace(/\{([a-z_]+)(?:\.([a-zA-Z_0-9]+))?\}/g, (all, head, field) => {
    if (head === "ms" && !field) return gap * 1000 < 10 ? (gap * 1000).toFixed(1) : String(Math.round(gap * 1000));
    if (head === "s" && !field) return gap < 10 ? gap.toFixed(2) : gap.toFixed(1);
    if (head === "depth_max" && !field) return fmt(depthMax);
    if (head === "start" && field) return fmt(own(start.data, field));
    if (head === "end" && field) return fmt(own(end.data, field));
    if (head === "result" && field) return fmt(result?.[field]);
    return all;
  });
}

/** The queue's deepest point in [t0, t1] (the depth it had at t0 included). */
function depthMax(model, t0, t1) {
  let depth = 0;
  let max = 0;
  for (const p of model.queue.points) {
    if (p.t > t1) break;
    if (p.depth !== null) depth = p.depth;
    max = p.t < t0 ? depth : Math.max(max, depth);
  }
  return max;
}

/** The run's key moments: [{t0, t1, label, start, end}] for every one found, in order. */
export function keyMoments(model, specs) {
  const out = [];
  for (const spec of specs || []) {
    const start = findEvent(model, spec.start);
    const end = findEvent(model, spec.end);
    if (!start || !end) continue;
    const [a, b] = start.t <= end.t ? [start, end] : [end, start];
    const result = model.end?.result ?? null;
    // The label in the page's language where the spec has it (label_zh), else its English.
    const label = (lang === "zh" && spec.label_zh) || spec.label;
    if (!result && label.includes("{result.")) continue; // a failed run has no result
    out.push({ t0: a.t, t1: b.t, start, end,
      label: fillLabel(label, { t0: a.t, t1: b.t, start, end, result, depthMax: depthMax(model, a.t, b.t) }) });
  }
  return out;
}

/** The time window that shows every moment, with room around them (an eighth of it, or up
 * to 2 ms for a short one; around a single instant, a thirtieth of the run) so that their
 * ends are not on the edges. */
export function momentsWindow(moments, runLength = 0) {
  if (!moments.length) return null;
  const t0 = Math.min(...moments.map((m) => m.t0));
  const t1 = Math.max(...moments.map((m) => m.t1));
  const span = t1 - t0;
  // (Not a fixed 2 ms around a tiny gap: '主' and a child's line 0.1 ms apart must still be
  // far apart on the screen.)
  const pad = span < 1e-6 ? Math.max(0.002, runLength / 30) : Math.max(span * 0.12, Math.min(0.002, span * 0.5));
  return { t0: Math.max(-pad / 2, t0 - pad), t1: t1 + pad };
}
