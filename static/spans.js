// The spans on a process lane: waiting for and holding a lock, in join(), blocked in a
// call (wait.*), a task; and the lock track's waiters and holders.
//
// Runs in the browser (and under node --test); called by run_model.js for each event of a
// lane. A span opens at its first event and closes at its partner (t1 null while open).

import { insertSorted } from "./time_sorted.js";
import { own, t } from "./i18n.js";

/** Open or close the span `e` is about on `lane`; `lock` is the model's lock track
 * ({points: waiters +1/-1, holds: hold spans}). Any other kind: nothing. */
export function foldSpan(lock, lane, e, data) {
  switch (e.kind) {
    case "lock.wait": {
      const span = { kind: "wait", t0: e.t, t1: null, label: t("waiting for the lock"), e0: e, e1: null };
      lane.spans.push(span);
      lane.open.lock = span;
      insertSorted(lock.points, { t: e.t, delta: +1, lane });
      break;
    }
    case "lock.acquire": {
      const waiting = lane.open.lock && lane.open.lock.kind === "wait" ? lane.open.lock : null;
      if (waiting) {
        waiting.t1 = e.t;
        waiting.e1 = e;
        insertSorted(lock.points, { t: e.t, delta: -1, lane });
      }
      const span = { kind: "hold", t0: e.t, t1: null, label: t("holding the lock"), e0: e, e1: null, lane };
      lane.spans.push(span);
      lane.open.lock = span;
      insertSorted(lock.holds, span);
      break;
    }
    case "lock.release":
      if (lane.open.lock && lane.open.lock.kind === "hold") {
        lane.open.lock.t1 = e.t;
        lane.open.lock.e1 = e;
      }
      lane.open.lock = null;
      break;
    case "join.wait": {
      const who = own(data, "name") || data.child || t("a child");
      const span = { kind: "join", t0: e.t, t1: null, label: t("in join() of %(who)s", { who }), e0: e, e1: null };
      lane.spans.push(span);
      lane.open.join.set(data.child ?? data.name ?? "?", span);
      break;
    }
    case "join.done": {
      const k = data.child ?? data.name ?? "?";
      const span = lane.open.join.get(k);
      if (span) {
        span.t1 = e.t;
        span.e1 = e;
        lane.open.join.delete(k);
      }
      break;
    }
    case "wait.start": {
      // A lesson about to block in a multiprocessing call says so first (wait.start:
      // the call, and what it waits for); wait.end when the call returned or raised.
      const call = data.call || t("a call");
      const label = data.waits_for ? t("in %(call)s: waiting for %(what)s", { call, what: own(data, "waits_for") })
        : t("waiting in %(call)s", { call });
      const span = { kind: "wait", t0: e.t, t1: null, label, e0: e, e1: null };
      lane.spans.push(span);
      lane.open.wait = span;
      break;
    }
    case "wait.end":
      if (lane.open.wait) {
        lane.open.wait.t1 = e.t;
        lane.open.wait.e1 = e;
        if (data.outcome) lane.open.wait.label += ` → ${own(data, "outcome")}`;
      }
      lane.open.wait = null;
      break;
    case "task.start": {
      const span = { kind: "task", t0: e.t, t1: null, e0: e, e1: null,
        label: data.label ? String(own(data, "label")) : t("task %(n)s", { n: data.task ?? data.i ?? "" }).trim() };
      lane.spans.push(span);
      lane.open.task = span;
      break;
    }
    case "task.end":
      if (lane.open.task) {
        lane.open.task.t1 = e.t;
        lane.open.task.e1 = e;
      }
      lane.open.task = null;
      break;
    default:
      break;
  }
}
