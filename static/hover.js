// What is under the pointer on a timeline: the nearest event, or the span, or the lane.
//
// Runs in the browser, on pointer moves (not per frame). Returns plain rows for the
// tooltip: kind, process, pid, ppid, core, time, data.

import { firstAtOrAfter } from "./time_sorted.js";

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
    ["exited", lane.exit === null ? "still running" : `${fmtT(lane.exit)} (exit code ${lane.exitcode ?? "?"})`]];
  if (lane.reap !== null && lane.exit !== null && lane.reap > lane.exit) {
    rows.push(["zombie for", `${((lane.reap - lane.exit) * 1000).toFixed(1)} ms`]);
  }
  if (lane.state) rows.push(["kernel state", `${lane.state.state} on CPU ${lane.state.core}`]);
  return rows;
}

export function hover(tl, which, x, y, view, clip, theme) {
  const g = tl.geom;
  if (!g || x < g.gutter) return null;
  const t = tl.tAt(x, view);
  if (t > clip) return null;
  const tol = (PICK_PX / g.plotW) * (view.t1 - view.t0);
  const m = tl.model;
  if (which === "cores") {
    const k = Math.floor((y - theme.axisH) / theme.coreH);
    if (k === m.cores.length) {
      return { title: `Cores busy with this run: ${(tl.inUseAvg ?? 0).toFixed(2)} on average over the shown time`,
        rows: [["how", "per column, the share of it each core ran a thread of the run, summed over the cores"]] };
    }
    const core = m.cores[k];
    if (!core) return null;
    const tick = nearest(core.ticks, t, tol);
    if (tick) return { title: `CPU ${k}: ${tick.lane.name} emitted ${tick.e.kind}`, rows: eventRows(tick.e, tick.lane) };
    // The stretch (cpu.run) under the pointer: the one that ran most, where sampled ones overlap.
    let best = null;
    for (let i = firstAtOrAfter(core.runs, t - tol - core.maxLen); i < core.runs.length; i++) {
      const s = core.runs[i];
      if (s.t0 > t + tol) break;
      if (s.t1 >= t - tol && s.t0 <= clip && (!best || s.share > best.share)) best = s;
    }
    if (best) {
      const ran = ((best.t1 - best.t0) * best.share * 1000).toFixed(2);
      const rows = [["from", fmtT(best.t0)], ["to", fmtT(best.t1)], ["on the core", `${ran} ms` +
        (best.share < 1 ? ` (${Math.round(best.share * 100)} % of the stretch)` : "")]];
      if (best.e.data.preempted !== undefined) rows.push(["ended", best.e.data.preempted ? "preempted (still runnable)" : "blocked, slept or exited"]);
      return { title: `CPU ${k}: ${best.lane.name} on this core (kernel)`, rows: [...rows, ...laneRows(best.lane)] };
    }
    return { title: `CPU ${k}: idle for this run at ${fmtT(t)}`, rows: [] };
  }
  if (y < g.tracksH) return trackHover(m, g.tracks[Math.floor(y / theme.trackH)], t);
  const index = tl.scroll + Math.floor((y - g.laneTop) / g.laneH);
  const lane = m.rows()[index];
  if (!lane) return null;
  const e = nearest(lane.marks, t, tol);
  if (e) return { title: `${lane.name}: ${e.kind}${e.kind === "print" ? ` “${e.data.text}”` : ""}`, rows: eventRows(e, lane) };
  for (const s of lane.spans) {
    const t1 = s.t1 ?? clip;
    if (s.t0 <= t && t <= t1) {
      return { title: `${lane.name}: ${s.label}`, rows: [["from", fmtT(s.t0)],
        ["to", s.t1 === null ? "still" : fmtT(s.t1)], ["lasted", `${((t1 - s.t0) * 1000).toFixed(1)} ms`],
        ...eventRows(s.e0, lane).slice(1)] };
    }
  }
  const exitAt = lane.exit ?? Infinity;
  if (t > exitAt && lane.reap !== null && t <= lane.reap) {
    return { title: `${lane.name}: zombie (exited, parent has not reaped it yet)`, rows: laneRows(lane) };
  }
  return { title: lane.name, rows: laneRows(lane) };
}

function trackHover(m, name, t) {
  if (name === "lock") {
    let waiting = 0;
    for (const p of m.lock.points) if (p.t <= t) waiting += p.delta;
    const holder = m.lock.holds.find((s) => s.t0 <= t && (s.t1 === null || t <= s.t1));
    return { title: `Lock at ${fmtT(t)}`, rows: [["held by", holder ? holder.lane.name : "nobody"], ["waiting", waiting]] };
  }
  if (name === "queue") {
    let depth = 0;
    for (const p of m.queue.points) if (p.t <= t && p.depth !== null) depth = p.depth;
    return { title: `Queue at ${fmtT(t)}`, rows: [["depth", depth]] };
  }
  if (name === "sold") {
    const sold = m.sold.points.filter((p) => p.t <= t).length;
    return { title: `Tickets at ${fmtT(t)}`, rows: [["sold", sold], ["stock", m.stock() ?? "?"]] };
  }
  return null;
}
