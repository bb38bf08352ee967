// The page: starts runs from the form, shows one run (or two, compared) live, replays.
//
// Runs in the browser; the entry module of templates/index.html. htmx does the server-side
// parts (the lesson's form, the run list); this module owns what needs JavaScript: the
// POST of a JSON body (the API takes only JSON), the URL (/runs/{id}, ?compare={id}), the
// shared View and Clock, the animation frame loop; the play bar (playbar.js) and pointer
// and keyboard on the timelines (timeline_input.js) are wired from here.

import { RunPanel, paramsLabel } from "./run_panel.js";
import { View, Clock } from "./view.js";
import { Playbar } from "./playbar.js";
import { wireTimelineInput } from "./timeline_input.js";
import { collectParams, describeError } from "./params_form.js";
import { THEMES } from "./palette.js";

const page = JSON.parse(document.getElementById("page-data").textContent);
const experiments = Object.fromEntries(page.experiments.map((e) => [e.id, e]));
const stage = document.getElementById("stage");
const timelinesEl = document.getElementById("timelines");
const detailsEl = document.getElementById("details");
const tooltip = document.querySelector(".tooltip");
const view = new View();
const clock = new Clock();
let panels = [];
let theme = THEMES.normal;
let dirty = true;
let lastStats = 0;
const frameMs = [];
let frames = 0; // frames drawn so far: tests wait for the next one instead of for a time

// ---- mounting runs -------------------------------------------------------------------

function mount(runs, compare = null) {
  for (const p of panels) p.destroy();
  const exp = experiments[runs[0].experiment];
  panels = runs.map((run, i) => new RunPanel(run, {
    cores: page.cores, experiment: experiments[run.experiment], timelinesEl, detailsEl,
    tag: compare ? paramsLabel(run.params, null, compare[i]) : null,
  }).start());
  stage.classList.toggle("comparing", runs.length > 1);
  theme = themeFor();
  stage.classList.add("has-run");
  playbar.hidden = false;
  clock.live();
  view.fit();
  dirty = true;
  document.title = runs.length > 1 ? `Compare #${runs.map((r) => r.id).join(" vs #")} · ${exp?.id}`
    : `Run ${runs[0].id} · ${runs[0].experiment}`;
}

function unmount() {
  for (const p of panels) p.destroy();
  panels = [];
  stage.classList.remove("has-run", "comparing");
  playbar.hidden = true;
}

function runUrl(runs) {
  return `/runs/${runs[0].id}${runs[1] ? `?compare=${runs[1].id}` : ""}`;
}

async function getRun(id) {
  const response = await fetch(`/api/runs/${encodeURIComponent(id)}`, { cache: "no-store" });
  if (!response.ok) throw new Error(`run ${id}: ${response.status}`);
  return response.json();
}

/** Mount whatever the URL names: /runs/{id}[?compare={id}], or nothing. */
async function mountFromUrl(initial) {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/);
  if (!match) return unmount();
  const other = new URLSearchParams(location.search).get("compare");
  try {
    const first = initial && initial.id === match[1] ? initial : await getRun(match[1]);
    const runs = other ? [first, await getRun(other)] : [first];
    const compare = experiments[first.experiment]?.compare;
    mount(runs, runs.length > 1 && compare ? compare : null);
  } catch (err) {
    formError(String(err.message || err));
  }
}

// ---- starting runs ---------------------------------------------------------------------

/** POST /api/runs: the new run's JSON, or an Error that says why not in the user's words. */
async function postRun(experiment, params) {
  const response = await fetch("/api/runs", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ experiment, params }),
  });
  const body = await response.json().catch(() => ({}));
  if (response.status !== 201) throw new Error(describeError(response.status, body));
  return body;
}

function form() {
  return document.getElementById("params-form");
}

function formError(text) {
  const box = form()?.querySelector(".form-error");
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
}

async function startRuns(paramSets, compare) {
  const f = form();
  const experiment = f.dataset.experiment;
  formError("");
  const buttons = f.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const runs = [];
    for (const params of paramSets) runs.push(await postRun(experiment, params));
    mount(runs, compare);
    history.pushState({ runs: runs.map((r) => r.id) }, "", runUrl(runs));
    document.body.dispatchEvent(new Event("procscope:runs"));
  } catch (err) {
    formError(String(err.message || err));
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.addEventListener("submit", (event) => {
  if (event.target.id !== "params-form") return;
  event.preventDefault();
  const { params, error } = collectParams(event.target);
  if (error) return formError(error);
  startRuns([params], null);
});

document.addEventListener("click", (event) => {
  const target = event.target.closest("button, a");
  if (!target) return;
  if (target.matches("[data-action=compare]")) {
    const f = form();
    const { params, error } = collectParams(f);
    if (error) return formError(error);
    const compare = JSON.parse(f.dataset.compare);
    startRuns(compare.map((side) => ({ ...params, ...side })), compare);
  } else if (target.matches("[data-proxy=start-run]")) {
    form().requestSubmit();
  } else if (target.matches("[data-proxy=compare]")) {
    form().querySelector("[data-action=compare]")?.click();
  } else if (target.matches("a[data-run]") && !event.ctrlKey && !event.metaKey && !event.shiftKey && event.button === 0) {
    event.preventDefault();
    history.pushState({}, "", target.getAttribute("href"));
    mountFromUrl(null);
  } else if (target.id === "presenter-toggle") {
    setPresenter(!document.body.classList.contains("presenter"));
  }
});

window.addEventListener("popstate", () => mountFromUrl(null));

timelinesEl.addEventListener("procscope:compare-with", async (event) => {
  const { run, params, first, compare } = event.detail;
  try {
    const other = await postRun(run.experiment, params);
    const runs = first ? [run, other] : [other, run];
    mount(runs, compare);
    history.pushState({}, "", runUrl(runs));
    document.body.dispatchEvent(new Event("procscope:runs"));
  } catch (err) {
    formError(String(err.message || err));
  }
});

document.body.addEventListener("htmx:afterSwap", (event) => {
  if (event.target.id !== "controls") return;
  const id = form()?.dataset.experiment;
  if (id && !panels.length) history.replaceState({}, "", `/?experiment=${encodeURIComponent(id)}`);
  refreshProxies();
});

function refreshProxies() {
  const hasCompare = !!form()?.querySelector("[data-action=compare]");
  const proxy = document.querySelector("[data-proxy=compare]");
  if (proxy) proxy.hidden = !hasCompare;
}

// ---- presenter mode ----------------------------------------------------------------------

/** Sizes for the canvases: presenter or not, and tighter when two runs share the screen. */
function themeFor() {
  const base = THEMES[document.body.classList.contains("presenter") ? "presenter" : "normal"];
  if (!stage.classList.contains("comparing")) return base;
  // Two runs share the height: thinner rows, and lanes may go below a pixel so that every
  // process stays in the picture (an overview beats a scrollbar when comparing shapes).
  return { ...base, coreH: Math.round(base.coreH * 0.7), trackH: Math.round(base.trackH * 0.7),
    axisH: Math.round(base.axisH * 0.85), minLaneH: 0.5 };
}

function setPresenter(on) {
  document.body.classList.toggle("presenter", on);
  document.getElementById("presenter-toggle").setAttribute("aria-pressed", String(on));
  theme = themeFor();
  try { localStorage.setItem("procscope.presenter", on ? "1" : ""); } catch { /* private mode */ }
  dirty = true;
}

// ---- the play bar --------------------------------------------------------------------------

function runNow(perfNow) {
  return panels.reduce((a, p) => Math.max(a, p.model.now(perfNow)), 0);
}

function anyLive() {
  return panels.some((p) => p.live);
}

const playbar = new Playbar(stage.querySelector(".playbar"), {
  view, clock, runNow, anyLive, redraw: () => { dirty = true; },
});

// ---- pointer and keyboard on the timelines ---------------------------------------------

wireTimelineInput({
  timelinesEl, tooltip, view, clock, runNow, anyLive, togglePlay: () => playbar.togglePlay(),
  panels: () => panels,
  theme: () => theme,
  redraw: () => { dirty = true; },
});

document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea, [contenteditable]")) return;
  if (event.key === "p" && !event.ctrlKey && !event.metaKey && !event.altKey) {
    setPresenter(!document.body.classList.contains("presenter"));
  }
});

new ResizeObserver(() => { dirty = true; }).observe(timelinesEl);

// ---- the frame loop -----------------------------------------------------------------------

function frame(perfNow) {
  let changed = false;
  for (const p of panels) changed = p.ingest(perfNow) || changed;
  if (panels.length) {
    const live = anyLive();
    const end = runNow(perfNow);
    let clip = clock.time(perfNow);
    if (clock.mode === "playing" && clip >= end) {
      if (live) clock.live();
      else clock.pause(perfNow, end);
      clip = clock.time(perfNow);
      dirty = true;
    }
    view.update(end, live && clock.mode === "live");
    // Compared runs show the same tracks (a run without a lock shows an empty Lock track:
    // the absence is the lesson).
    const tracks = new Set(panels.flatMap((p) => p.model.tracks()));
    for (const p of panels) p.timeline.sharedTracks = panels.length > 1 ? tracks : null;
    if (dirty || changed || live || clock.mode === "playing") {
      const t0 = performance.now();
      for (const p of panels) p.draw(view, Math.min(clip, p.model.now(perfNow)), theme);
      frameMs.push(performance.now() - t0);
      if (frameMs.length > 240) frameMs.shift();
      playbar.update(clip, end);
      frames += 1;
      dirty = false;
    }
    if (perfNow - lastStats > 250) {
      lastStats = perfNow;
      for (const p of panels) p.stats(perfNow);
    }
  }
  requestAnimationFrame(frame);
}

// For people who script the page (and the tests): the live objects, frame costs and the
// count of frames drawn.
window.procscope = { view, clock, get panels() { return panels; }, frameMs, mount,
  get frames() { return frames; } };

try {
  if (new URLSearchParams(location.search).get("present") === "1" ||
      localStorage.getItem("procscope.presenter") === "1") setPresenter(true);
} catch { /* private mode */ }
refreshProxies();
mountFromUrl(page.run);
requestAnimationFrame(frame);
