// The spans on a process lane: waiting for and holding a lock, in join(), blocked in a
// call (wait.*), a task; and the lock track's waiters and holders.
//
// Runs in the browser (and under node --test); called by run_model.js for each event of a
// lane. A span opens at its first event and closes at its partner (t1 null while open).

import { insertSorted } from "./time_sorted.js";
import { own, t } from "./i18n.js";

/** A span of `kind` opening at `e` on `lane` (t1 null until its partner closes it). */
export function opened(lane, kind, e, label, extra = {}) {
  const span = { kind, t0: e.t, t1: null, label, e0: e, e1: null, ...extra };
  lane.spans.push(span);
  return span;
}

/** Close `span` (if any) at `e`; the span, or null. */
function closed(span, e) {
  if (!span) return null;
  span.t1 = e.t;
  span.e1 = e;
  return span;
}

/** Open or close the span `e` is about on `lane`; `lock` is the model's lock track
 * ({points: waiters +1/-1, holds: hold spans}). Any other kind: nothing. */
export function foldSpan(lock, lane, e, data) {
  switch (e.kind) {
    case "lock.wait":
      lane.open.lock = opened(lane, "wait", e, t("waiting for the lock"));
      insertSorted(lock.points, { t: e.t, delta: +1, lane });
      break;
    case "lock.acquire":
      if (closed(lane.open.lock?.kind === "wait" ? lane.open.lock : null, e)) {
        insertSorted(lock.points, { t: e.t, delta: -1, lane });
      }
      lane.open.lock = opened(lane, "hold", e, t("holding the lock"), { lane });
      insertSorted(lock.holds, lane.open.lock);
      break;
    case "lock.release":
      closed(lane.open.lock?.kind === "hold" ? lane.open.lock : null, e);
      lane.open.lock = null;
      break;
    case "join.wait": {
      const who = own(data, "name") || data.child || t("a child");
      lane.open.join.set(data.child ?? data.name ?? "?",
        opened(lane, "join", e, t("in join() of %(who)s", { who })));
      break;
    }
    case "join.done": {
      const k = data.child ?? data.name ?? "?";
      if (closed(lane.open.join.get(k), e)) lane.open.join.delete(k);
      break;
    }
    case "wait.start": {
      // A lesson about to block in a multiprocessing call says so first (wait.start:
      // the call, and what it waits for); wait.end when the call returned or raised.
      const call = data.call || t("a call");
      const label = data.waits_for ? t("in %(call)s: waiting for %(what)s", { call, what: own(data, "waits_for") })
        : t("waiting in %(call)s", { call });
      lane.open.wait = opened(lane, "wait", e, label);
      break;
    }
    case "wait.end":
      if (closed(lane.open.wait, e) && data.outcome) lane.open.wait.label += ` → ${own(data, "outcome")}`;
      lane.open.wait = null;
      break;
    case "task.start":
      lane.open.task = opened(lane, "task", e,
        data.label ? String(own(data, "label")) : t("task %(n)s", { n: data.task ?? data.i ?? "" }).trim());
      break;
    case "task.end":
      closed(lane.open.task, e);
      lane.open.task = null;
      break;
    default:
      break;
  }
}
