// The sidebar's Download menu (the run shown: replay.html, trace.json, events.ndjson) and
// Import control (an exported run's NDJSON, POSTed to /api/runs/import; token holders only:
// the server leaves the control out of a viewer's page).
//
// Runs in the browser, on the dashboard (templates/partials/transfer.html). It knows the
// run shown from the URL (/runs/{id}), which dashboard.js keeps up to date.

import { t, told } from "./i18n.js";

const menu = document.querySelector(".transfer .downloads");
const input = document.querySelector(".transfer [data-testid=import-run]");
const error = document.querySelector(".transfer .import-error");

function shownRun() {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

function refresh() {
  const id = shownRun();
  menu.hidden = id === null;
  if (id === null) return;
  for (const a of menu.querySelectorAll("a[data-export]")) {
    a.href = `/api/runs/${encodeURIComponent(id)}/${a.dataset.export}`;
    a.download = `procscope-run-${id}.${a.dataset.export.replace("events.", "")}`;
  }
}

// dashboard.js changes the URL with pushState (no event for that): look again whenever the
// page says the runs changed, on back/forward, on a click, and when the menu opens.
for (const [target, name] of [[window, "popstate"], [document.body, "procscope:runs"],
  [document, "click"], [menu, "toggle"]]) target.addEventListener(name, () => setTimeout(refresh));
refresh();

input?.addEventListener("change", async () => {
  const file = input.files[0];
  if (!file) return;
  error.hidden = true;
  try {
    const response = await fetch("/api/runs/import", {
      method: "POST", headers: { "Content-Type": "application/x-ndjson", Accept: "application/json" },
      body: file,
    });
    const body = await response.json().catch(() => ({}));
    if (response.status !== 201) {
      throw new Error(told(body) ?? `${response.status} ${response.statusText}`);
    }
    location.assign(body.links.page);
  } catch (err) {
    error.textContent = t("Import failed: %(why)s", { why: err.message || err });
    error.hidden = false;
  } finally {
    input.value = "";
  }
});
