// The lesson's params form (templates/partials/form.html) as a JSON body for POST /api/runs.
//
// Runs in the browser. The inputs carry their JSON Schema type in data-kind; bounds are in
// min/max (and data-min/data-max for the items of a list). We check them here to say what
// is wrong next to the form; the server checks again and its 422 names the field too.

import { t, told } from "./i18n.js";

export function collectParams(form) {
  const params = {};
  for (const input of form.querySelectorAll("[data-kind]")) {
    const name = input.name;
    const kind = input.dataset.kind;
    if (kind === "boolean") {
      params[name] = input.checked;
    } else if (kind === "integer" || kind === "number") {
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value)) return { error: t("%(name)s: a number is needed", { name }) };
      if (kind === "integer" && !Number.isInteger(value)) return { error: t("%(name)s: a whole number is needed", { name }) };
      if (input.min !== "" && value < Number(input.min)) return { error: t("%(name)s: at least %(min)s", { name, min: input.min }) };
      if (input.max !== "" && value > Number(input.max)) return { error: t("%(name)s: at most %(max)s", { name, max: input.max }) };
      params[name] = value;
    } else if (kind === "array") {
      const items = input.value.split(",").map((s) => s.trim()).filter((s) => s !== "");
      const values = items.map(Number);
      if (values.some((v) => !Number.isFinite(v))) return { error: t("%(name)s: comma-separated numbers, e.g. 2, 3, 5", { name }) };
      const { min, max, minItems, maxItems } = input.dataset;
      if (minItems && values.length < Number(minItems)) return { error: t("%(name)s: at least %(n)s numbers", { name, n: minItems }) };
      if (maxItems && values.length > Number(maxItems)) return { error: t("%(name)s: at most %(n)s numbers", { name, n: maxItems }) };
      if (min !== undefined && values.some((v) => v < Number(min))) return { error: t("%(name)s: each at least %(min)s", { name, min }) };
      if (max !== undefined && values.some((v) => v > Number(max))) return { error: t("%(name)s: each at most %(max)s", { name, max }) };
      params[name] = values;
    } else {
      params[name] = input.value;
    }
  }
  return { params };
}

/** An API error answer in one line for the form. */
export function describeError(status, body) {
  const detail = body?.detail;
  if (status === 422 && Array.isArray(detail)) {
    // A param's error is said with its name, as the form's own checks say it (the loc of
    // POST /api/runs is body, experiment, "params", name).
    const where = (loc = []) => (loc.includes("params") ? loc.slice(loc.indexOf("params") + 1)
      : loc.filter((p) => p !== "body")).join(".");
    return detail.map((d) => `${where(d.loc)}: ${told({ detail: [d] })}`).join("; ");
  }
  // The server's own words in the page's language where it sent their key (i18n.js told()).
  const said = told(body);
  if (status === 429) return t("Too many runs at once: %(why)s", { why: said ?? t("wait for one to finish") });
  if (status === 401 || status === 403) return t("Not allowed to start runs: %(why)s (open the teacher's link with ?token=…)", { why: said ?? status });
  return t("The server said %(status)s: %(detail)s", { status, detail: said ?? JSON.stringify(detail) });
}
