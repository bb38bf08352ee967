// The order of a run's process lanes, stable from one run to the next, and lane keys.
//
// Runs in the browser (and under node --test: tests/js/lane_order.test.js); used by
// run_model.js.

/** A process name's family and number: "worker-3" -> ["worker-", 3], "ForkPoolWorker-10:2"
 * -> ["ForkPoolWorker-10:", 2], "main" -> ["main", -1]. multiprocessing numbers a
 * parent's children in the order it created them. */
export function nameParts(name) {
  const m = /^(.*?)(\d+)$/.exec(name);
  return m ? [m[1], Number(m[2])] : [name, -1];
}

/**
 * Process lanes in a stable order: the main first; then by start, each family of siblings
 * (one name but for the number: worker-1, worker-2...) together where its first started,
 * in the order of their numbers. Siblings started together report themselves in any order
 * (worker-3 may run before worker-2 does): by start alone, the order would change from one
 * run to the next, and between the halves of a compare.
 */
export function stableOrder(lanes) {
  const parts = new Map();
  const first = new Map(); // family -> its earliest start
  for (const l of lanes) {
    // A lane not named yet (the kernel saw it first) or a thread is a family of its own.
    const own = l.tid || l.name === `pid ${l.pid}`;
    const p = own ? [`\u0000${l.key}`, -1] : nameParts(l.name);
    parts.set(l, p);
    const s = l.start ?? Infinity;
    if (!(first.get(p[0]) <= s)) first.set(p[0], s);
  }
  const main = (l) => (l.role === "main" && !l.tid ? 0 : 1);
  return [...lanes].sort((a, b) => {
    const [fa, na] = parts.get(a);
    const [fb, nb] = parts.get(b);
    return main(a) - main(b) || first.get(fa) - first.get(fb) || (fa < fb ? -1 : fa > fb ? 1 : 0) ||
      na - nb || (a.start ?? Infinity) - (b.start ?? Infinity) || String(a.key).localeCompare(String(b.key));
  });
}

/** The lane key of a process (its pid) or of one of its threads ("pid/tid"). */
export function laneKey(pid, tid) {
  return tid && tid !== pid ? `${pid}/${tid}` : pid;
}
