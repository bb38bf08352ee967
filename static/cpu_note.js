// What the note beside the core lanes says: how they were made, and what was lost of them.
//
// Runs in the browser; used by run_panel.js with the run's model (its `cpu.lanes` and
// `sampler.rate` events).

import { t } from "./i18n.js";

function ms(x) {
  return x < 1 ? x.toFixed(1) : x < 10 ? x.toFixed(1).replace(/\.0$/, "") : String(Math.round(x));
}

/** What to say about the core lanes: {mode, text, lost}, or null before cpu.lanes arrives. */
export function cpuLanesNote(model) {
  const lanes = model.cpuLanes;
  if (!lanes || !lanes.mode) return null;
  let text;
  if (lanes.mode === "sampled") {
    const range = model.resolutionRange;
    const res = !range ? null : range[1] > range[0] * 1.5 ? `~${ms(range[0])}–${ms(range[1])} ms`
      : `~${ms(model.resolutionMs)} ms`;
    const detail = String(lanes.detail || "");
    const fix = detail.match(/for exact core lanes run:\s*(.*)$/i);
    const hint = fix ? fix[1] : detail.includes("--cpu-lanes sampled")
      ? t("start the server without --cpu-lanes sampled") : detail;
    text = (res ? t("Core lanes sampled (%(res)s resolution): each column as full as the share of it a thread ran.", { res })
      : t("Core lanes sampled: each column as full as the share of it a thread ran.")) +
      (hint ? t(" For exact lanes: %(hint)s", { hint }) : "");
  } else {
    text = t("core lanes: exact (the kernel's context switches)");
  }
  const lost = (lanes.lost ?? 0) > 0 || (lanes.broken ?? 0) > 0;
  if (lost) {
    text += t(" · %(lost)s switch records lost (a kernel ring was full): %(broken)s stretches around them not drawn",
      { lost: Number(lanes.lost ?? 0).toLocaleString(), broken: Number(lanes.broken ?? 0).toLocaleString() });
  }
  return { mode: lanes.mode, text, lost };
}
