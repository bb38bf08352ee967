// What the browser code must know that is no one lesson's, as the server sent it.
//
// Runs in the browser (and under node --test, which hands its own facts to useFacts()). The
// page's `#page-facts` (templates/partials/page_facts.html: app.live.catalog.page_facts) holds
// the final statuses (app/pipe/ledger.py's FINAL), the tracks the page can draw in their
// order (experiments/spec.py's TRACK_KINDS) and the standard library's helper threads
// (spec.py's LIBRARY_THREADS). Read from there, never copied here: Python owns them.
// What is one lesson's (its tracks, the marks of its own kinds, its helper threads) comes
// with the lesson (GET /api/experiments, the page's data), so this code knows no lesson.

const facts = { final: new Set(), trackKinds: [], libraryThreads: [] };

/** Take the facts (the page's, or a test's): {final, track_kinds, library_threads}. */
export function useFacts(raw) {
  facts.final = new Set(raw.final);
  facts.trackKinds = [...raw.track_kinds];
  facts.libraryThreads = [...raw.library_threads];
}

const sent = globalThis.document?.getElementById("page-facts");
if (sent) useFacts(JSON.parse(sent.textContent));

/** Has a run with this status ended for good? */
export function isFinal(status) {
  return facts.final.has(status);
}

/** The track kinds the page can draw, top to bottom. */
export function trackKinds() {
  return facts.trackKinds;
}

/**
 * Is a thread of this name wiring, not the lesson: the standard library's (by its name, or
 * its target: threading names a thread made with one "Thread-N (target)"), or one the
 * lesson names in its `helper_threads`?
 */
export function helperThread(name, lessonHelpers = []) {
  const own = (n) => name === n || name.endsWith(`(${n})`);
  return facts.libraryThreads.some(own) || lessonHelpers.includes(name);
}
