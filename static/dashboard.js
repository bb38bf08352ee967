// The page: starts runs from the form, shows one run (or two, compared) live, replays.
//
// Runs in the browser; the entry module of templates/index.html. htmx does the server-side
// parts (the lesson's form, the run list); this module owns what needs JavaScript: the
// POST of a JSON body (the API takes only JSON), the URL (/runs/{id}, ?compare={id}), the
// shared View and Clock, the animation frame loop; the play bar (playbar.js) and pointer
// and keyboard on the timelines (timeline_input.js) are wired from here.
//
// The frame loop draws only when something changed: new events, the view or the clock
// moved, a resize. While a run is live its "now" edge moves every frame; that, and the
// events that keep arriving (the server sends a batch every ~20 ms), are drawn at most
// LIVE_HZ times a second: a watching Chromium shares the cores with the lesson it watches
// (README, Performance). Input (zoom, pan, scrub) and replay draw at the display's rate. A
// hidden tab draws nothing; its events are still folded into the model once a second, so
// nothing piles up for the moment it is shown again.
//
// Past ~300 lines: the page's wiring (the form, compare one after the other, the URL,
// presenter mode, the frame loop) in one place; every piece with logic of its own is a
// module apart (playbar.js, timeline_input.js, params_form.js, run_panel.js).

import { FINAL, RunPanel, paramsLabel } from "./run_panel.js";
import { View, Clock, advance } from "./view.js";
import { Playbar } from "./playbar.js";
import { wireTimelineInput } from "./timeline_input.js";
import { Follower } from "./follow.js";
import { QuestionBox } from "./predict.js";
import { signalNotes, wireWhatIf } from "./what_if.js";
import { collectParams, describeError } from "./params_form.js";
import { NameRegistry, THEMES } from "./palette.js";
import { t, savedView, wireLanguageSwitch } from "./i18n.js";

const page = JSON.parse(document.getElementById("page-data").textContent);
const experiments = Object.fromEntries(page.experiments.map((e) => [e.id, e]));
const stage = document.getElementById("stage");
const timelinesEl = document.getElementById("timelines");
const detailsEl = document.getElementById("details");
const tooltip = document.querySelector(".tooltip");
const view = new View();
// What this viewer may do, from the server (app.guard): a watch-only page has no Stop.
const canControl = page.role !== "viewer";
document.body.dataset.role = page.role || "admin";
const clock = new Clock();
let panels = [];
let theme = THEMES.normal;
let dirty = true;
let lastStats = 0;
let lastDraw = -Infinity;
const frameMs = [];
let frames = 0; // frames drawn so far: tests wait for the next one instead of for a time
const query = new URLSearchParams(location.search);
// ?draw=every-frame: the loop as it was (a live run drawn at every animation frame), for
// measuring what the throttling saves (bench/browser.py); ?live_hz=N another live rate.
const EVERY_FRAME = query.get("draw") === "every-frame";
const LIVE_HZ = Math.min(120, Math.max(1, Number(query.get("live_hz")) || 15));
let pendingNote = null; // the compare side waiting for the first to end, and its element
let names = null; // compared runs: one colour and order registry by process name

// ---- mounting runs -------------------------------------------------------------------

function panelFor(run, compare, i) {
  return new RunPanel(run, {
    cores: page.cores, experiment: experiments[run.experiment], timelinesEl, detailsEl, names,
    tag: compare ? paramsLabel(run.params, null, compare[i]) : null, canControl,
  }).start();
}

/** Did the runs run one after the other (each had the whole machine)? From their JSON. */
function oneAfterTheOther(runs) {
  const at = (s) => (s ? Date.parse(s) : NaN);
  const [a, b] = runs;
  const after = (x, y) => at(y.started_at) >= at(x.ended_at); // NaN (not ended): false
  return after(a, b) || after(b, a);
}

/** Above compared runs of a CPU-bound lesson: how they ran, so that nobody reads a race. */
function compareNote(runs, waiting) {
  timelinesEl.querySelector(".compare-note")?.remove();
  const exp = experiments[runs[0].experiment];
  if (!exp?.compare_sequential || (runs.length < 2 && !waiting)) return;
  const note = document.createElement("p");
  note.className = "compare-note";
  note.dataset.testid = "compare-note";
  note.textContent = waiting || oneAfterTheOther(runs)
    ? t("Run one after the other, so each had the whole machine; each is drawn from its own start.")
    : t("These two ran at the same time, sharing the machine's cores: each had about half of it.");
  timelinesEl.prepend(note);
}

function mount(runs, compare = null, waiting = null) {
  for (const p of panels) p.destroy();
  pendingNote?.remove();
  pendingNote = null;
  const exp = experiments[runs[0].experiment];
  names = runs.length > 1 || waiting ? new NameRegistry() : null;
  panels = runs.map((run, i) => panelFor(run, compare, i));
  // A traced program's facts in the sidebar say how it ended once it has.
  if (runs[0].program && !FINAL.has(runs[0].status)) {
    const panel = panels[0];
    panel.finished.then((run) => { if (run && panels[0] === panel) followForm(run); });
  }
  // The run starts (or is shown) on the stage: a drawer open over it (a phone, presenter
  // mode) would hide it, so it closes.
  setControls(false);
  if (waiting) {
    // The other side's place, until the first has ended.
    pendingNote = document.createElement("section");
    pendingNote.className = "run-timeline pending";
    pendingNote.textContent = t("%(second)s: starts when %(first)s has ended, so that each run has the whole machine.",
      { second: paramsLabel(waiting, null, waiting), first: paramsLabel(runs[0].params, null, compare[0]) });
    timelinesEl.append(pendingNote);
  }
  compareNote(runs, waiting);
  stage.classList.toggle("comparing", runs.length > 1 || !!waiting);
  theme = themeFor();
  stage.classList.add("has-run");
  playbar.hidden = false;
  clock.live();
  view.fit();
  dirty = true;
  document.title = runs.length > 1 ? t("Compare #%(a)s vs #%(b)s · %(experiment)s", { a: runs[0].id, b: runs[1].id, experiment: exp?.id })
    : t("Run %(id)s · %(experiment)s", { id: runs[0].id, experiment: runs[0].experiment });
}

function unmount() {
  for (const p of panels) p.destroy();
  panels = [];
  pendingNote?.remove();
  pendingNote = null;
  timelinesEl.querySelector(".compare-note")?.remove();
  stage.classList.remove("has-run", "comparing");
  playbar.hidden = true;
}

function runUrl(runs) {
  return `/runs/${runs[0].id}${runs[1] ? `?compare=${runs[1].id}` : ""}`;
}

async function getRun(id) {
  const response = await fetch(`/api/runs/${encodeURIComponent(id)}`, { cache: "no-store" });
  if (!response.ok) throw new Error(t("Run %(id)s: the server said %(status)s", { id, status: response.status }));
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
    followForm(first);
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

async function startRuns(paramSets, compare, sequential = false) {
  const f = form();
  const experiment = f.dataset.experiment;
  formError("");
  const buttons = f.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  follower.busy = true; // this tab mounts its own runs; the classroom stream is for others
  try {
    if (sequential) return await startOneAfterTheOther(experiment, paramSets, compare);
    const runs = [];
    for (const params of paramSets) runs.push(await postRun(experiment, params));
    mount(runs, compare);
    f.dataset.run = String(runs[0].id); // the form shows this run's lesson and params
    history.pushState({ runs: runs.map((r) => r.id) }, "", runUrl(runs));
    document.body.dispatchEvent(new Event("procscope:runs"));
  } catch (err) {
    formError(String(err.message || err));
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    follower.busy = false;
  }
}

/**
 * "Run both" of a CPU-bound lesson (its spec's compare_sequential): the second side starts
 * after the first's run.end. Started together, both would share the same cores and each
 * get half the machine: gil's processes would come out slower than its threads.
 */
async function startOneAfterTheOther(experiment, paramSets, compare) {
  const first = await postRun(experiment, paramSets[0]);
  mount([first], compare, paramSets[1]);
  if (form()) form().dataset.run = String(first.id);
  history.pushState({ runs: [first.id] }, "", runUrl([first]));
  document.body.dispatchEvent(new Event("procscope:runs"));
  const panel = panels[0];
  const ended = await panel.finished;
  if (!ended || panels.length !== 1 || panels[0] !== panel) return; // the page moved on
  if (ended.status === "cancelled") {
    pendingNote.textContent = t("The first run was cancelled: the second was not started.");
    return;
  }
  let second;
  try {
    second = await postRun(experiment, paramSets[1]);
  } catch (err) {
    pendingNote.textContent = t("The second run could not start: %(why)s", { why: err.message || err });
    return;
  }
  if (panels.length !== 1 || panels[0] !== panel) return;
  pendingNote.remove();
  pendingNote = null;
  panels.push(panelFor(second, compare, 1));
  compareNote([ended, second], null);
  document.title = t("Compare #%(a)s vs #%(b)s · %(experiment)s", { a: first.id, b: second.id, experiment });
  history.replaceState({ runs: [first.id, second.id] }, "", runUrl([first, second]));
  document.body.dispatchEvent(new Event("procscope:runs"));
  dirty = true;
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
    startRuns(compare.map((side) => ({ ...params, ...side })), compare,
      f.dataset.compareSequential === "true");
  } else if (target.matches("[data-proxy=start-run]")) {
    form().requestSubmit();
  } else if (target.matches("[data-proxy=compare]")) {
    form().querySelector("[data-action=compare]")?.click();
  } else if (target.matches("a[data-run]") && !event.ctrlKey && !event.metaKey && !event.shiftKey && event.button === 0) {
    event.preventDefault();
    history.pushState({}, "", target.getAttribute("href"));
    follower.stay(target.dataset.run); // chosen: stay there, offer the teacher's next run
    mountFromUrl(null);
  } else if (target.id === "presenter-toggle") {
    setPresenter(!document.body.classList.contains("presenter"));
  } else if (target.id === "controls-toggle") {
    setControls(!document.body.classList.contains("controls-open"));
  } else if (target.matches("[data-action=ask]")) {
    askTheClass(target);
  }
});

window.addEventListener("popstate", () => {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/);
  if (match) follower.stay(match[1]);
  mountFromUrl(null);
});

timelinesEl.addEventListener("procscope:compare-with", async (event) => {
  const { run, params, first, compare } = event.detail;
  follower.busy = true;
  try {
    const other = await postRun(run.experiment, params);
    const runs = first ? [run, other] : [other, run];
    mount(runs, compare);
    history.pushState({}, "", runUrl(runs));
    document.body.dispatchEvent(new Event("procscope:runs"));
  } catch (err) {
    formError(String(err.message || err));
  } finally {
    follower.busy = false;
  }
});

document.body.addEventListener("htmx:afterSwap", (event) => {
  if (event.target.id !== "controls") return;
  const id = form()?.dataset.experiment;
  if (id && !panels.length) history.replaceState({}, "", `/?experiment=${encodeURIComponent(id)}`);
  refreshProxies();
});

function refreshProxies() {
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
function followForm(run) {
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
      (shown.dataset.ended === "true" || !FINAL.has(run.status));
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

/** The teacher opened a question (predict.js): a page that follows and shows no live run
 * goes to the question's lesson, its form filled with the params the question is about,
 * and waits there for the run that answers it. The tab that asked is there already. */
function followQuestion(q) {
  if (!q?.open || !experiments[q.experiment] || asking || q.id === askedHere || !follower.following ||
      follower.busy || anyLive() || !window.htmx) return;
  unmount();
  history.pushState({}, "", `/?experiment=${encodeURIComponent(q.experiment)}`);
  const select = document.querySelector("[data-testid=experiment-select]");
  if (select) select.value = q.experiment;
  window.htmx.ajax("GET", `/partials/form/${encodeURIComponent(q.experiment)}?question=${encodeURIComponent(q.id)}`,
    { target: "#controls", swap: "innerHTML" });
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
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "p") {
    setPresenter(!document.body.classList.contains("presenter"));
  } else if (event.key === "c") {
    setControls(!document.body.classList.contains("controls-open"));
  } else if (event.key === "Escape" && document.body.classList.contains("controls-open")) {
    setControls(false);
  }
});

// A token holder's tap on a process of a live run: kill, pause or resume it (what_if.js).
wireWhatIf({ timelinesEl, canControl });

// ---- the controls drawer (a narrow screen, presenter mode) -------------------------------

/** Below ~800 px and in presenter mode the sidebar is folded away; this opens it over the
 * stage (the params one key away: C); closed, the timeline has the width again. */
function setControls(open) {
  document.body.classList.toggle("controls-open", open);
  document.getElementById("controls-toggle").setAttribute("aria-expanded", String(open));
  dirty = true;
}

// ---- following the teacher, and the class's question --------------------------------------

const questionBox = new QuestionBox(document.getElementById("question"), { role: page.role });
questionBox.show(page.question);
let askedHere = null; // the id of the question this tab opened
let asking = false; // ... while it opens one (its frame may come before the POST's answer)

/** The teacher asks the lesson's question before running it: the form takes the params the
 * question is about (ticket_rush: lock off), and every page shows the question. */
async function askTheClass(button) {
  const f = form();
  formError("");
  button.disabled = true;
  asking = true;
  try {
    const response = await fetch("/api/prediction", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ experiment: f.dataset.experiment }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.status !== 201) throw new Error(describeError(response.status, body));
    askedHere = body.question.id;
    for (const [name, value] of Object.entries(body.question.params || {})) {
      const input = f.querySelector(`[name="${CSS.escape(name)}"]`);
      if (!input) continue;
      if (input.type === "checkbox") input.checked = !!value;
      else input.value = Array.isArray(value) ? value.join(", ") : String(value);
    }
    questionBox.show(body.question);
  } catch (err) {
    formError(String(err.message || err));
  } finally {
    button.disabled = false;
    asking = false;
  }
}

let lastFollowed = null; // {run, at}: the second run of a "Run both" joins the first

const follower = new Follower({
  after: page.news,
  newest: page.newest,
  banner: stage.querySelector(".follow-banner"),
  shown: () => panels.map((p) => String(p.run.id)),
  onQuestion: (frame) => {
    questionBox.update(frame);
    if (frame.kind === "prediction.open") followQuestion(frame.data);
  },
  show: (run) => {
    const exp = experiments[run.experiment];
    const prev = lastFollowed;
    const pair = prev && exp?.compare && prev.run.experiment === run.experiment &&
      performance.now() - prev.at < 2000 && panels.length === 1 && panels[0].run.id === prev.run.id;
    const runs = pair ? [prev.run, run] : [run];
    mount(runs, pair ? exp.compare : null);
    history.pushState({ runs: runs.map((r) => r.id) }, "", runUrl(runs));
    // The lesson's form follows too, with the run's params ("Run again" repeats it).
    followForm(runs[0]);
    document.body.dispatchEvent(new Event("procscope:runs"));
    lastFollowed = { run, at: performance.now() };
  },
});

new ResizeObserver(() => { dirty = true; }).observe(timelinesEl);

// The language switch (i18n.js): the page reloads in the other language at the same
// address, so the run shown stays; the time window of a finished run's timelines is kept
// and given back (in the frame loop) once the replayed run has been shown again.
wireLanguageSwitch(document.querySelector(".lang-switch"), {
  view: () => (panels.length && !anyLive() && view.mode !== "fit"
    ? { t0: view.t0, t1: view.t1, runs: panels.map((p) => String(p.run.id)).join(",") } : null),
});
let keptView = savedView();

// A run ended (or its header's key-moment button was pressed): zoom to the lesson's key
// moments, those of every run shown (compared runs share one time scale).
timelinesEl.addEventListener("procscope:key-moment", () => {
  const wins = panels.map((p) => p.keyWindow).filter(Boolean);
  if (!wins.length) return;
  view.focus(Math.min(...wins.map((w) => w.t0)), Math.max(...wins.map((w) => w.t1)));
  dirty = true;
});
timelinesEl.addEventListener("procscope:redraw", () => { dirty = true; });

// A hidden tab gets no animation frames: fold its events in once a second, draw nothing.
setInterval(() => {
  if (!document.hidden) return;
  for (const p of panels) p.ingest(performance.now(), Infinity);
}, 1000);
document.addEventListener("visibilitychange", () => { if (!document.hidden) dirty = true; });

// ---- the frame loop -----------------------------------------------------------------------

function frame(perfNow) {
  let changed = false;
  for (const p of panels) changed = p.ingest(perfNow) || changed;
  if (keptView && panels.length && panels.every((p) => p.resultReady)) {
    // After the key moment's zoom: the window as it was (if these are still the runs shown).
    if (panels.map((p) => String(p.run.id)).join(",") === keptView.runs) view.focus(keptView.t0, keptView.t1);
    keptView = null;
    dirty = true;
  }
  if (panels.length) {
    const live = anyLive();
    const end = runNow(perfNow);
    const { clip, stopped } = advance(view, clock, perfNow, end, live);
    if (stopped) dirty = true;
    // Compared runs show the same tracks (a run without a lock shows an empty Lock track:
    // the absence is the lesson).
    const tracks = new Set(panels.flatMap((p) => p.model.tracks()));
    for (const p of panels) p.timeline.sharedTracks = panels.length > 1 ? tracks : null;
    // What asks for a frame: input or a clock change now; a replay every frame; a live run
    // (new events, its moving edge) at most LIVE_HZ; a finished run's last events at once.
    const liveDue = live && (changed || clock.mode === "live" || EVERY_FRAME) &&
      (EVERY_FRAME || perfNow - lastDraw >= 1000 / LIVE_HZ - 2);
    const drawn = panels.every((p) => p.timeline.drawnVersion === p.model.version);
    if (dirty || clock.mode === "playing" || liveDue || (!live && (changed || !drawn))) {
      lastDraw = perfNow;
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
      for (const p of panels) {
        p.stats(perfNow);
        signalNotes(p);
      }
    }
  }
  requestAnimationFrame(frame);
}

// For people who script the page (and the tests): the live objects, frame costs and the
// count of frames drawn.
window.procscope = { view, clock, get panels() { return panels; }, frameMs, mount, follower,
  redraw: () => { dirty = true; },
  get theme() { return theme; },
  get frames() { return frames; } };

try {
  if (new URLSearchParams(location.search).get("present") === "1" ||
      localStorage.getItem("procscope.presenter") === "1") setPresenter(true);
} catch { /* private mode */ }
refreshProxies();
mountFromUrl(page.run);
follower.start();
requestAnimationFrame(frame);
