// What is under the pointer on a timeline: the nearest event, or the span, or the lane.
//
// Runs in the browser, on pointer moves (not per frame). Returns plain rows for the
// tooltip: kind, process, pid, ppid, core, time, data. The rows' keys stay English (other
// modules read them: what_if.js the pid); timeline_input.js translates them as it shows them.

import { firstAtOrAfter } from "./time_sorted.js";
import { t } from "./i18n.js";
import { objectHover } from "./object_tracks.js";

const PICK_PX = 6;

function fmtT(t) {
  return t === null || t === undefined ? "—" : `${t.toFixed(4)} s`;
}

function eventRows(e, lane) {
  const rows = [["kind", e.kind], ["process", `${e.proc || lane?.name || "?"}`], ["pid", e.pid],
    ["ppid", e.ppid ?? "—"], ["core", e.cpu ?? "—"], ["time", fmtT(e.t)], ["seq", e.seq]];
  const data = e.data && Object.keys(e.data).length ? JSON.stringify(e.data) : "";
  if (data) rows.push(["data", data.length > 300 ? data.slice(0, 300) + "…" : data]);
  return rows;
}

function nearest(list, t, tol) {
  const i = firstAtOrAfter(list, t - tol);
  let best = null;
  for (let k = i; k < list.length && list[k].t <= t + tol; k++) {
    if (!best || Math.abs(list[k].t - t) < Math.abs(best.t - t)) best = list[k];
  }
  return best;
}

function laneRows(lane) {
  const rows = [["process", lane.name], ["pid", lane.tid ? `${lane.pid} (thread ${lane.tid})` : lane.pid],
    ["ppid", lane.ppid ?? "—"], ["role", lane.role || "—"], ["started", fmtT(lane.start)],
    ["exited", lane.exit === null ? t("still running") : t("%(t)s (exit code %(code)s)", { t: fmtT(lane.exit), code: lane.exitcode ?? "?" })]];
  if (lane.reap !== null && lane.exit !== null && lane.reap > lane.exit) {
    rows.push(["zombie for", `${((lane.reap - lane.exit) * 1000).toFixed(1)} ms`]);
  }
  if (lane.state) rows.push(["kernel state", t("%(state)s on CPU %(core)s", { state: lane.state.state, core: lane.state.core })]);
  return rows;
}

export function hover(tl, which, x, y, view, clip, theme) {
  const g = tl.geom;
  if (!g || x < g.gutter) return null;
  const at = tl.tAt(x, view);
  if (at > clip) return null;
  const tol = (PICK_PX / g.plotW) * (view.t1 - view.t0);
  const m = tl.model;
  if (which === "cores") {
    const k = Math.floor((y - theme.axisH) / theme.coreH);
    if (k === m.cores.length) {
      return { title: t("Cores busy with this run: %(n)s on average over the shown time", { n: (tl.inUseAvg ?? 0).toFixed(2) }),
        rows: [["how", t("per column, the share of it each core ran a thread of the run, summed over the cores")]] };
    }
    const core = m.cores[k];
    if (!core) return null;
    const tick = nearest(core.ticks, at, tol);
    if (tick) return { title: t("CPU %(k)s: %(name)s emitted %(kind)s", { k, name: tick.lane.name, kind: tick.e.kind }), rows: eventRows(tick.e, tick.lane) };
    // The stretch (cpu.run) under the pointer: the one that ran most, where sampled ones overlap.
    let best = null;
    for (let i = firstAtOrAfter(core.runs, at - tol - core.maxLen); i < core.runs.length; i++) {
      const s = core.runs[i];
      if (s.t0 > at + tol) break;
      if (s.t1 >= at - tol && s.t0 <= clip && (!best || s.share > best.share)) best = s;
    }
    if (best) {
      const ran = ((best.t1 - best.t0) * best.share * 1000).toFixed(2);
      const rows = [["from", fmtT(best.t0)], ["to", fmtT(best.t1)], ["on the core", `${ran} ms` +
        (best.share < 1 ? t(" (%(pct)s %% of the stretch)", { pct: Math.round(best.share * 100) }) : "")]];
      if (best.e.data.preempted !== undefined) rows.push(["ended", best.e.data.preempted ? t("preempted (still runnable)") : t("blocked, slept or exited")]);
      return { title: t("CPU %(k)s: %(name)s on this core (kernel)", { k, name: best.lane.name }), rows: [...rows, ...laneRows(best.lane)] };
    }
    return { title: t("CPU %(k)s: idle for this run at %(at)s", { k, at: fmtT(at) }), rows: [] };
  }
  if (y < g.tracksH) {
    const lessonH = g.tracks.length * theme.trackH;
    if (y < lessonH) return trackHover(m, g.tracks[Math.floor(y / theme.trackH)], at);
    const o = g.objTracks[Math.floor((y - lessonH) / theme.objTrackH)];
    return o ? objectHover(m.objects, o, at, fmtT) : null;
  }
  const index = tl.scroll + Math.floor((y - g.laneTop) / g.laneH);
  const lane = m.rows()[index];
  if (!lane) return null;
  const e = nearest(lane.marks, at, tol);
  // A traced program's object the event is about: named as the program names it.
  const about = e?.data?.obj ?? e?.data?.pool;
  const obj = about !== undefined && about !== null ? ` · ${m.objects.nameOf(String(about))}` : "";
  if (e) return { title: `${lane.name}: ${e.kind}${obj}${e.kind === "print" ? ` “${e.data.text}”` : ""}`, rows: eventRows(e, lane) };
  for (const s of lane.spans) {
    const t1 = s.t1 ?? clip;
    if (s.t0 <= at && at <= t1) {
      return { title: `${lane.name}: ${s.label}`, rows: [["from", fmtT(s.t0)],
        ["to", s.t1 === null ? t("still") : fmtT(s.t1)], ["lasted", `${((t1 - s.t0) * 1000).toFixed(1)} ms`],
        ...eventRows(s.e0, lane).slice(1)] };
    }
  }
  const exitAt = lane.exit ?? Infinity;
  if (at > exitAt && lane.reap !== null && at <= lane.reap) {
    return { title: t("%(name)s: zombie (exited, parent has not reaped it yet)", { name: lane.name }), rows: laneRows(lane) };
  }
  return { title: lane.name, rows: laneRows(lane) };
}

function trackHover(m, name, at) {
  if (name === "lock") {
    let waiting = 0;
    for (const p of m.lock.points) if (p.t <= at) waiting += p.delta;
    const holder = m.lock.holds.find((s) => s.t0 <= at && (s.t1 === null || at <= s.t1));
    return { title: t("Lock at %(at)s", { at: fmtT(at) }), rows: [["held by", holder ? holder.lane.name : t("nobody")], ["waiting", waiting]] };
  }
  if (name === "queue") {
    let depth = 0;
    for (const p of m.queue.points) if (p.t <= at && p.depth !== null) depth = p.depth;
    return { title: t("Queue at %(at)s", { at: fmtT(at) }), rows: [["depth", depth]] };
  }
  if (name === "sold") {
    const sold = m.sold.points.filter((p) => p.t <= at).length;
    return { title: t("Tickets at %(at)s", { at: fmtT(at) }), rows: [["sold", sold], ["stock", m.stock() ?? "?"]] };
  }
  return null;
}
