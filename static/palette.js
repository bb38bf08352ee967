// Colours. Runs in the browser.
//
// Processes take the Okabe–Ito palette (Okabe & Ito 2008), chosen so that viewers with any
// common colour-vision deficiency still tell the hues apart. A hundred buyers cannot all
// have their own hue, so colour only says "this is the same process" along a lane and
// across the core lanes; what a mark *means* is carried by its shape or texture (hatched =
// waiting, solid = holding, outlined Z = zombie), never by colour alone.

const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#C9B400"];
const MAIN = "#4a4a4a";

/** The colour of the n-th process lane (0 is the run's main). */
export function processColor(index, role) {
  if (role === "main" || index === 0) return MAIN;
  return OKABE_ITO[(index - 1) % OKABE_ITO.length];
}

/**
 * Colours and lane order by process name, shared by compared runs: join's worker-1 is the
 * same hue, in the same place, in both panels. A name gets the next rank the first time any
 * of the runs that share the registry names a lane so; its colour follows its rank.
 */
export class NameRegistry {
  constructor() {
    this.ranks = new Map();
  }

  rank(name) {
    let r = this.ranks.get(name);
    if (r === undefined) {
      r = this.ranks.size;
      this.ranks.set(name, r);
    }
    return r;
  }

  color(name, role) {
    if (role === "main") return MAIN;
    return OKABE_ITO[this.rank(name) % OKABE_ITO.length];
  }
}

export const THEMES = {
  normal: {
    bg: "#ffffff", laneAlt: "#f6f7f9", grid: "#e3e6ea", text: "#2b2f36", muted: "#6b7280",
    axis: "#9aa1ab", now: "#d0021b", error: "#b00020", stock: "#b00020",
    oversold: "rgba(213, 94, 0, 0.28)", waiters: "rgba(80, 90, 110, 0.22)",
    font: "12px system-ui, sans-serif", smallFont: "11px system-ui, sans-serif",
    gutter: 140, axisH: 22, coreH: 20, trackH: 34, maxLaneH: 20, minLaneH: 1,
  },
  presenter: {
    bg: "#ffffff", laneAlt: "#f0f1f3", grid: "#d5d8dd", text: "#000000", muted: "#333333",
    axis: "#555555", now: "#d0021b", error: "#b00020", stock: "#b00020",
    oversold: "rgba(213, 94, 0, 0.35)", waiters: "rgba(40, 40, 60, 0.25)",
    font: "bold 16px system-ui, sans-serif", smallFont: "15px system-ui, sans-serif",
    gutter: 170, axisH: 28, coreH: 30, trackH: 46, maxLaneH: 30, minLaneH: 1,
  },
};
