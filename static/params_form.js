// The lesson's params form (templates/partials/form.html) as a JSON body for POST /api/runs.
//
// Runs in the browser. The inputs carry their JSON Schema type in data-kind; bounds are in
// min/max (and data-min/data-max for the items of a list). We check them here to say what
// is wrong next to the form; the server checks again and its 422 names the field too.

export function collectParams(form) {
  const params = {};
  for (const input of form.querySelectorAll("[data-kind]")) {
    const name = input.name;
    const kind = input.dataset.kind;
    if (kind === "boolean") {
      params[name] = input.checked;
    } else if (kind === "integer" || kind === "number") {
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value)) return { error: `${name}: a number is needed` };
      if (kind === "integer" && !Number.isInteger(value)) return { error: `${name}: a whole number is needed` };
      if (input.min !== "" && value < Number(input.min)) return { error: `${name}: at least ${input.min}` };
      if (input.max !== "" && value > Number(input.max)) return { error: `${name}: at most ${input.max}` };
      params[name] = value;
    } else if (kind === "array") {
      const items = input.value.split(",").map((s) => s.trim()).filter((s) => s !== "");
      const values = items.map(Number);
      if (values.some((v) => !Number.isFinite(v))) return { error: `${name}: comma-separated numbers, e.g. 2, 3, 5` };
      const { min, max, minItems, maxItems } = input.dataset;
      if (minItems && values.length < Number(minItems)) return { error: `${name}: at least ${minItems} numbers` };
      if (maxItems && values.length > Number(maxItems)) return { error: `${name}: at most ${maxItems} numbers` };
      if (min !== undefined && values.some((v) => v < Number(min))) return { error: `${name}: each at least ${min}` };
      if (max !== undefined && values.some((v) => v > Number(max))) return { error: `${name}: each at most ${max}` };
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
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  if (status === 429) return `Too many runs at once: ${typeof detail === "string" ? detail : "wait for one to finish"}`;
  if (status === 401 || status === 403) return `Not allowed to start runs: ${detail || status} (open the teacher's link with ?token=…)`;
  return `The server said ${status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`;
}
