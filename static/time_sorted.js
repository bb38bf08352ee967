// Lists kept sorted by `t`: inserting an event, finding the first one in a time window.
//
// Runs in the browser (and under node --test). Events arrive in seq order, which is the
// order the relay read them, not quite time order across processes (each process's own
// events are in time order). So an insertion walks back from the end: O(1) for the usual
// nearly-sorted arrival. The renderers binary-search the visible window.

export function insertSorted(list, item) {
  let i = list.length;
  while (i > 0 && list[i - 1].t > item.t) i -= 1;
  if (i === list.length) list.push(item);
  else list.splice(i, 0, item);
}

/** Index of the first item with t >= t0 (binary search). */
export function firstAtOrAfter(list, t0) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].t < t0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
