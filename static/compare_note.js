// Above compared runs: whether they ran one after the other or shared the machine.
//
// Runs in the browser; used by dashboard.js when it mounts compared runs (a lesson's spec
// says `compare_sequential` where the two sides must not share the cores).

import { t } from "./i18n.js";

/** Did the runs run one after the other (each had the whole machine)? From their JSON. */
function oneAfterTheOther(runs) {
  const at = (s) => (s ? Date.parse(s) : NaN);
  const [a, b] = runs;
  const after = (x, y) => at(y.started_at) >= at(x.ended_at); // NaN (not ended): false
  return after(a, b) || after(b, a);
}

/** Above compared runs of a CPU-bound lesson: how they ran, so that nobody reads a race. */
export function compareNote(timelinesEl, exp, runs, waiting) {
  timelinesEl.querySelector(".compare-note")?.remove();
  if (!exp?.compare_sequential || (runs.length < 2 && !waiting)) return;
  const note = document.createElement("p");
  note.className = "compare-note";
  note.dataset.testid = "compare-note";
  note.textContent = waiting || oneAfterTheOther(runs)
    ? t("Run one after the other, so each had the whole machine; each is drawn from its own start.")
    : t("These two ran at the same time, sharing the machine's cores: each had about half of it.");
  timelinesEl.prepend(note);
}
