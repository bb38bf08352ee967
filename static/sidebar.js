// The sidebar: the lesson's form (htmx swaps it in), its errors, the top bar's stand-ins for
// its buttons, and following the run on the stage.
//
// Runs in the browser; used by dashboard.js, which mounts the runs the sidebar follows.

import { isFinal } from "./page_facts.js";
import { t } from "./i18n.js";

export function form() {
  return document.getElementById("params-form");
}

export function formError(text) {
  const box = form()?.querySelector(".form-error");
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
}

export function refreshProxies() {
  // The top bar's (and a phone's empty stage's) Run and Run both stand for the form's:
  // none where the sidebar shows no form (a traced program's run).
  const hasCompare = !!form()?.querySelector("[data-action=compare]");
  const hasRun = !!form()?.querySelector("[data-testid=start-run]");
  for (const proxy of document.querySelectorAll("[data-proxy=compare]")) proxy.hidden = !hasCompare;
  for (const proxy of document.querySelectorAll("[data-proxy=start-run]")) proxy.hidden = !hasRun;
}

/** The sidebar follows the run on the stage: its lesson's form filled with its params (and
 * the lesson select), or a traced program's facts. Nothing is fetched again where the
 * sidebar shows that run already. */
export function followForm(run, experiments) {
  const select = document.querySelector("[data-testid=experiment-select]");
  if (!window.htmx) return;
  if (run.program) {
    if (select && !select.querySelector("option[value='']")) {
      const option = new Option(t("Your program"), "", true, true);
      Object.assign(option, { disabled: true, hidden: true });
      option.dataset.testid = "program-option";
      select.prepend(option);
    }
    if (select) select.value = "";
    const shown = document.querySelector("#controls [data-program-run]");
    const current = shown?.dataset.programRun === String(run.id) &&
      (shown.dataset.ended === "true" || !isFinal(run.status));
    if (!current) {
      window.htmx.ajax("GET", `/partials/program/${encodeURIComponent(run.id)}`, { target: "#controls", swap: "innerHTML" });
    }
    return;
  }
  if (!experiments[run.experiment]) return;
  if (select) select.value = run.experiment;
  const f = form();
  if (f && f.dataset.experiment === run.experiment && f.dataset.run === String(run.id)) return;
  window.htmx.ajax("GET", `/partials/form/${encodeURIComponent(run.experiment)}?run=${encodeURIComponent(run.id)}`,
    { target: "#controls", swap: "innerHTML" });
}
