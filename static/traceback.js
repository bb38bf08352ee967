// The traceback a failed run's page shows, if it has one.
//
// Runs in the browser (and under node --test: tests/js/traceback.test.js). A lesson's
// run.error carries the lesson's traceback; a lesson that failed in its own words (a Pool's
// lost task: experiments.spec.LessonFailure) and a main that only exited non-zero have
// none, and get no Traceback box. A traced program (`procscope trace`) is the user's own
// code: its traceback is the one its main printed on stderr, as python does.

const HEAD = "Traceback (most recent call last):";

/** Is this run `error` a Python traceback (not a sentence such as "... exited with code 3")? */
export function isTraceback(error) {
  return typeof error === "string" && error.split("\n").some((line) => line.startsWith(HEAD));
}

/** The last traceback the process `pid` printed on stderr (print events, in arrival order),
 * from its "Traceback" line to the last line it printed there; null if it printed none. */
export function printedTraceback(prints, pid) {
  const lines = prints.filter((e) => e.pid === pid && e.data?.stream === "stderr").map((e) => String(e.data.text ?? ""));
  const at = lines.findLastIndex((line) => line.startsWith(HEAD));
  return at < 0 ? null : lines.slice(at).join("\n");
}
