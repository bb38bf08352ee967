// Colours. Runs in the browser.
//
// Processes take the Okabe–Ito palette (Okabe & Ito 2008), chosen so that viewers with any
// common colour-vision deficiency still tell the hues apart. A hundred buyers cannot all
// have their own hue, so colour only says "this is the same process" along a lane and
// across the core lanes; what a mark *means* is carried by its shape or texture (hatched =
// waiting, solid = holding, outlined Z = zombie), never by colour alone.

const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#C9B400"];
const MAIN = "#4a4a4a";

/** The colour of the n-th process lane (0 is the run's main): a lane's first colour, until
 * its run's model has placed it (RunModel.rows). */
export function processColor(index, role) {
  if (role === "main" || index === 0) return MAIN;
  return OKABE_ITO[(index - 1) % OKABE_ITO.length];
}

/**
 * Colours by lane name, for one run or for compared runs that share the registry: a name
 * takes the next hue in the order of the runs' lanes (each run's lanes in its own stable
 * order, RunModel.rows; the first run's first), never in the order events arrived. So a
 * run shows the same colours alone and compared, and join's worker-2 has one hue in both
 * halves. Each run says its lanes' order with `arrange`; `version` moves when a colour does.
 */
export class NameRegistry {
  constructor() {
    this.orders = []; // per run (its slot): its lanes' names, in its rows' order
    this.hues = new Map(); // name -> index into the palette
    this.version = 0;
  }

  /** A place for one more run sharing the registry; its index is the run's `slot`. */
  slot() {
    this.orders.push([]);
    return this.orders.length - 1;
  }

  /** Run `slot`'s lane names (not its main's), top to bottom; colours follow. */
  arrange(slot, names) {
    const old = this.orders[slot];
    if (old && old.length === names.length && old.every((n, i) => n === names[i])) return;
    this.orders[slot] = names;
    const hues = new Map();
    for (const order of this.orders) for (const n of order) if (!hues.has(n)) hues.set(n, hues.size);
    const same = hues.size === this.hues.size && [...hues].every(([n, i]) => this.hues.get(n) === i);
    this.hues = hues;
    if (!same) this.version += 1;
  }

  color(name, role) {
    if (role === "main") return MAIN;
    const hue = this.hues.get(name);
    return hue === undefined ? null : OKABE_ITO[hue % OKABE_ITO.length];
  }
}

export const THEMES = {
  normal: {
    bg: "#ffffff", laneAlt: "#f6f7f9", grid: "#e3e6ea", text: "#2b2f36", muted: "#6b7280",
    axis: "#9aa1ab", now: "#d0021b", error: "#b00020", stock: "#b00020",
    oversold: "rgba(213, 94, 0, 0.28)", waiters: "rgba(80, 90, 110, 0.22)",
    font: "12px system-ui, sans-serif", smallFont: "11px system-ui, sans-serif",
    gutter: 140, axisH: 22, coreH: 20, trackH: 34, objTrackH: 30, maxLaneH: 20, minLaneH: 1,
  },
  presenter: {
    bg: "#ffffff", laneAlt: "#f0f1f3", grid: "#d5d8dd", text: "#000000", muted: "#333333",
    axis: "#555555", now: "#d0021b", error: "#b00020", stock: "#b00020",
    oversold: "rgba(213, 94, 0, 0.35)", waiters: "rgba(40, 40, 60, 0.25)",
    font: "bold 16px system-ui, sans-serif", smallFont: "15px system-ui, sans-serif",
    gutter: 170, axisH: 28, coreH: 30, trackH: 46, objTrackH: 40, maxLaneH: 30, minLaneH: 1,
  },
};
