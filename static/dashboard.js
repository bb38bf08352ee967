// The page: starts runs from the form, shows one run (or two, compared) live, replays.
//
// Runs in the browser; the entry module of templates/index.html. htmx does the server-side
// parts (the lesson's form, the run list); this module owns what needs JavaScript: the
// POST of a JSON body (the API takes only JSON), the URL (/runs/{id}, ?compare={id}), the
// shared View and Clock, the animation frame loop, pointer and keyboard on the timelines.

import { RunPanel, paramsLabel } from "./run_panel.js";
import { View, Clock } from "./view.js";
import { hover } from "./hover.js";
import { collectParams, describeError } from "./params_form.js";
import { THEMES } from "./palette.js";

const page = JSON.parse(document.getElementById("page-data").textContent);
const experiments = Object.fromEntries(page.experiments.map((e) => [e.id, e]));
const stage = document.getElementById("stage");
const timelinesEl = document.getElementById("timelines");
const detailsEl = document.getElementById("details");
const playbar = stage.querySelector(".playbar");
const tooltip = document.querySelector(".tooltip");
const view = new View();
const clock = new Clock();
let panels = [];
let theme = THEMES.normal;
let dirty = true;
let lastStats = 0;
const frameMs = [];

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
    for (const params of paramSets) {
      const response = await fetch("/api/runs", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ experiment, params }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status !== 201) throw new Error(describeError(response.status, body));
      runs.push(body);
    }
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
    const response = await fetch("/api/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ experiment: run.experiment, params }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.status !== 201) throw new Error(describeError(response.status, body));
    const runs = first ? [run, body] : [body, run];
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

// ---- the playbar: pause, replay, speed, scrubber, zoom ----------------------------------

function runNow(perfNow) {
  return panels.reduce((a, p) => Math.max(a, p.model.now(perfNow)), 0);
}

function anyLive() {
  return panels.some((p) => p.live);
}

const playBtn = playbar.querySelector(".play");
const liveBtn = playbar.querySelector(".live");
const speedSel = playbar.querySelector(".speed select");
const scrub = playbar.querySelector(".scrub");
const clockOut = playbar.querySelector(".clock");

function togglePlay() {
  const now = performance.now();
  const end = runNow(now);
  if (clock.mode === "playing") clock.pause(now, Math.min(clock.time(now), end));
  else if (clock.mode === "paused") clock.play(now, clock.t >= end - 1e-6 ? 0 : clock.t);
  else if (anyLive()) clock.pause(now, end);
  else {
    clock.play(now, 0); // a finished run: replay it from the start
    view.fit();
  }
  dirty = true;
}

playBtn.addEventListener("click", togglePlay);
liveBtn.addEventListener("click", () => { clock.live(); dirty = true; });
speedSel.addEventListener("change", () => { clock.setSpeed(performance.now(), Number(speedSel.value)); });
scrub.addEventListener("input", () => { clock.seek(performance.now(), Number(scrub.value)); dirty = true; });
playbar.querySelectorAll("[data-zoom]").forEach((b) => b.addEventListener("click", () => {
  const now = runNow(performance.now());
  if (b.dataset.zoom === "fit") view.fit();
  else view.zoom(b.dataset.zoom === "in" ? 0.5 : 2, (view.t0 + view.t1) / 2, now, anyLive());
  dirty = true;
}));

function updatePlaybar(perfNow, clip, end) {
  const live = anyLive();
  const shown = Math.min(clip, end);
  playBtn.textContent = clock.mode === "playing" ? "Pause" : clock.mode === "paused" ? "▶ Play"
    : live ? "Pause" : "▶ Replay";
  liveBtn.hidden = !(live && clock.mode !== "live");
  scrub.max = String(Math.max(end, 0.001));
  if (document.activeElement !== scrub) scrub.value = String(shown);
  clockOut.textContent = `${shown.toFixed(3)} s / ${end.toFixed(3)} s`;
}

// ---- pointer and keyboard on the timelines --------------------------------------------

function panelOf(target) {
  const section = target.closest(".run-timeline");
  return panels.find((p) => p.timelineEl === section) || null;
}

let drag = null;

timelinesEl.addEventListener("wheel", (event) => {
  const panel = panelOf(event.target);
  if (!panel || !event.target.matches("canvas")) return;
  event.preventDefault();
  const tl = panel.timeline;
  if (event.shiftKey && event.target.matches(".procs")) {
    tl.scroll += Math.sign(event.deltaY) * Math.max(1, Math.round(tl.geom.visible / 8));
  } else {
    const rect = event.target.getBoundingClientRect();
    const at = tl.tAt(event.clientX - rect.left, view);
    view.zoom(Math.exp(event.deltaY * 0.0015), at, runNow(performance.now()), anyLive());
  }
  dirty = true;
}, { passive: false });

timelinesEl.addEventListener("pointerdown", (event) => {
  const panel = panelOf(event.target);
  if (!panel || !event.target.matches("canvas") || event.button !== 0) return;
  event.target.setPointerCapture(event.pointerId);
  drag = { panel, x: event.clientX, y: event.clientY, scroll: panel.timeline.scroll, moved: false,
    canvas: event.target };
});

timelinesEl.addEventListener("pointermove", (event) => {
  if (drag) {
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    const tl = drag.panel.timeline;
    view.pan((-event.movementX / tl.geom.plotW) * (view.t1 - view.t0), runNow(performance.now()), anyLive());
    if (drag.canvas.matches(".procs")) tl.scroll = drag.scroll - Math.round(dy / tl.geom.laneH);
    dirty = true;
    tooltip.hidden = true;
    return;
  }
  showTooltip(event);
});

timelinesEl.addEventListener("pointerup", (event) => {
  const tapped = drag && !drag.moved;
  drag = null;
  if (tapped) showTooltip(event); // a tap (touch screens have no hover) shows the details
});
timelinesEl.addEventListener("pointerleave", () => { tooltip.hidden = true; });

function showTooltip(event) {
  const panel = panelOf(event.target);
  if (!panel || !event.target.matches("canvas")) {
    tooltip.hidden = true;
    return;
  }
  const rect = event.target.getBoundingClientRect();
  const perfNow = performance.now();
  const clip = Math.min(clock.time(perfNow), panel.model.now(perfNow));
  const info = hover(panel.timeline, event.target.matches(".cores") ? "cores" : "procs",
    event.clientX - rect.left, event.clientY - rect.top, view, clip, theme);
  if (!info) {
    tooltip.hidden = true;
    return;
  }
  const rows = info.rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`).join("");
  tooltip.innerHTML = `<strong>${esc(info.title)}</strong>${rows ? `<table>${rows}</table>` : ""}`;
  tooltip.hidden = false;
  const w = tooltip.offsetWidth;
  const h = tooltip.offsetHeight;
  const x = event.clientX + 14 + w > innerWidth ? event.clientX - w - 14 : event.clientX + 14;
  const y = event.clientY + 14 + h > innerHeight ? event.clientY - h - 10 : event.clientY + 14;
  tooltip.style.left = `${Math.max(4, x)}px`;
  tooltip.style.top = `${Math.max(4, y)}px`;
}

function esc(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

timelinesEl.addEventListener("keydown", (event) => {
  const panel = panelOf(event.target);
  if (!panel) return;
  const now = runNow(performance.now());
  const live = anyLive();
  const span = view.t1 - view.t0;
  const keys = {
    ArrowLeft: () => view.pan(-span * 0.1, now, live),
    ArrowRight: () => view.pan(span * 0.1, now, live),
    ArrowUp: () => { panel.timeline.scroll -= 1; },
    ArrowDown: () => { panel.timeline.scroll += 1; },
    PageUp: () => { panel.timeline.scroll -= panel.timeline.geom.visible; },
    PageDown: () => { panel.timeline.scroll += panel.timeline.geom.visible; },
    "+": () => view.zoom(0.7, (view.t0 + view.t1) / 2, now, live),
    "=": () => view.zoom(0.7, (view.t0 + view.t1) / 2, now, live),
    "-": () => view.zoom(1 / 0.7, (view.t0 + view.t1) / 2, now, live),
    "0": () => view.fit(),
    f: () => view.fit(),
    " ": togglePlay,
  };
  const action = keys[event.key];
  if (!action) return;
  event.preventDefault();
  action();
  dirty = true;
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
    const clockLive = clock.mode === "live";
    view.update(clockLive ? end : end, live && clockLive);
    // Compared runs show the same tracks (a run without a lock shows an empty Lock track:
    // the absence is the lesson).
    const tracks = new Set(panels.flatMap((p) => p.model.tracks()));
    for (const p of panels) p.timeline.sharedTracks = panels.length > 1 ? tracks : null;
    if (dirty || changed || live || clock.mode === "playing") {
      const t0 = performance.now();
      for (const p of panels) p.draw(view, Math.min(clip, p.model.now(perfNow)), theme);
      frameMs.push(performance.now() - t0);
      if (frameMs.length > 240) frameMs.shift();
      updatePlaybar(perfNow, clip, end);
      dirty = false;
    }
    if (perfNow - lastStats > 250) {
      lastStats = perfNow;
      for (const p of panels) p.stats(perfNow);
    }
  }
  requestAnimationFrame(frame);
}

// For people who script the page (and the tests): the live objects and frame costs.
window.procscope = { view, clock, get panels() { return panels; }, frameMs, mount };

try {
  if (new URLSearchParams(location.search).get("present") === "1" ||
      localStorage.getItem("procscope.presenter") === "1") setPresenter(true);
} catch { /* private mode */ }
refreshProxies();
mountFromUrl(page.run);
requestAnimationFrame(frame);
