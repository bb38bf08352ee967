// The page: starts runs from the form, shows one run (or two, compared) live, replays.
//
// Runs in the browser; the entry module of templates/index.html. htmx does the server-side
// parts (the lesson's form, the run list); this module owns what needs JavaScript: the
// POST of a JSON body (the API takes only JSON), the URL (/runs/{id}, ?compare={id}), which
// runs are mounted on the stage (stage.js: the View, the Clock and the frame loop, shared
// with the offline replay), the drawers.
//
// Past ~300 lines: the page's wiring (the form, compare one after the other, the URL, the
// sidebar that follows the run shown) in one place; every piece with logic of its own is a
// module apart (stage.js, params_form.js, run_panel.js, classroom_page.js).

import { RunPanel, paramsLabel } from "./run_panel.js";
import { isFinal } from "./page_facts.js";
import { Stage } from "./stage.js";
import { followForm, form, formError, refreshProxies } from "./sidebar.js";
import { compareNote } from "./compare_note.js";
import { Follower } from "./follow.js";
import { QuestionBox } from "./predict.js";
import { signalNotes, wireWhatIf } from "./what_if.js";
import { collectParams, describeError } from "./params_form.js";
import { NameRegistry } from "./palette.js";
import { t } from "./i18n.js";

const page = JSON.parse(document.getElementById("page-data").textContent);
const experiments = Object.fromEntries(page.experiments.map((e) => [e.id, e]));
const stageEl = document.getElementById("stage");
const timelinesEl = document.getElementById("timelines");
const detailsEl = document.getElementById("details");
// What this viewer may do, from the server (app.guard): a watch-only page has no Stop.
const canControl = page.role !== "viewer";
document.body.dataset.role = page.role || "admin";
let panels = [];
let pendingNote = null; // the compare side waiting for the first to end, and its element
let names = null; // compared runs: one colour and order registry by process name

/** Sizes for the canvases: tighter when two runs share the screen. */
function themeFor(base) {
  if (!stageEl.classList.contains("comparing")) return base;
  // Two runs share the height: thinner rows, and lanes may go below a pixel so that every
  // process stays in the picture (an overview beats a scrollbar when comparing shapes).
  return { ...base, coreH: Math.round(base.coreH * 0.7), trackH: Math.round(base.trackH * 0.7),
    objTrackH: Math.round(base.objTrackH * 0.7),
    axisH: Math.round(base.axisH * 0.85), minLaneH: 0.5 };
}

// A token holder's notes on a live run (what_if.js) refresh with its status line.
const stage = new Stage({ stageEl, timelinesEl, panels: () => panels, themeFor, onStats: signalNotes,
  rememberPresenter: true });
const { view, clock, playbar } = stage;

// ---- mounting runs -------------------------------------------------------------------

function panelFor(run, compare, i) {
  return new RunPanel(run, {
    cores: page.cores, experiment: experiments[run.experiment], timelinesEl, detailsEl, names,
    tag: compare ? paramsLabel(run.params, null, compare[i]) : null, canControl,
  }).start();
}

function mount(runs, compare = null, waiting = null) {
  for (const p of panels) p.destroy();
  pendingNote?.remove();
  pendingNote = null;
  const exp = experiments[runs[0].experiment];
  names = runs.length > 1 || waiting ? new NameRegistry() : null;
  panels = runs.map((run, i) => panelFor(run, compare, i));
  document.body.classList.toggle("program-run", Boolean(runs[0].program)); // the legend's items
  // A traced program's facts in the sidebar say how it ended once it has.
  if (runs[0].program && !isFinal(runs[0].status)) {
    const panel = panels[0];
    panel.finished.then((run) => { if (run && panels[0] === panel) followForm(run, experiments); });
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
  compareNote(timelinesEl, exp, runs, waiting);
  stageEl.classList.toggle("comparing", runs.length > 1 || !!waiting);
  stageEl.classList.add("has-run");
  playbar.hidden = false;
  clock.live();
  view.fit();
  stage.retheme();
  document.title = runs.length > 1 ? t("Compare #%(a)s vs #%(b)s · %(experiment)s", { a: runs[0].id, b: runs[1].id, experiment: exp?.id })
    : t("Run %(id)s · %(experiment)s", { id: runs[0].id, experiment: runs[0].experiment });
}

function unmount() {
  for (const p of panels) p.destroy();
  panels = [];
  pendingNote?.remove();
  pendingNote = null;
  timelinesEl.querySelector(".compare-note")?.remove();
  stageEl.classList.remove("has-run", "comparing");
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
    followForm(first, experiments);
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
 * get half the machine: processes against threads, the processes would come out slower.
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
  compareNote(timelinesEl, experiments[ended.experiment], [ended, second], null);
  document.title = t("Compare #%(a)s vs #%(b)s · %(experiment)s", { a: first.id, b: second.id, experiment });
  history.replaceState({ runs: [first.id, second.id] }, "", runUrl([first, second]));
  document.body.dispatchEvent(new Event("procscope:runs"));
  stage.redraw();
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
    stage.togglePresenter();
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

/** The teacher opened a question (predict.js): a page that follows and shows no live run
 * goes to the question's lesson, its form filled with the params the question is about,
 * and waits there for the run that answers it. The tab that asked is there already. A page
 * whose run is live (or not yet read to its end: a finished run just opened) holds the
 * question and goes when its run has ended, if the question is still open and no run of
 * the teacher's came first. */
let heldQuestion = null;
document.body.addEventListener("procscope:runs", () => {
  const q = heldQuestion;
  if (!q || stage.anyLive()) return;
  heldQuestion = null;
  if (questionBox.q?.id === q.id && questionBox.q.open) followQuestion(questionBox.q);
});

function followQuestion(q) {
  if (!q?.open || !experiments[q.experiment] || asking || q.id === askedHere || !follower.following ||
      follower.busy || !window.htmx) return;
  if (stage.anyLive()) {
    heldQuestion = q;
    return;
  }
  heldQuestion = null;
  unmount();
  history.pushState({}, "", `/?experiment=${encodeURIComponent(q.experiment)}`);
  const select = document.querySelector("[data-testid=experiment-select]");
  if (select) select.value = q.experiment;
  window.htmx.ajax("GET", `/partials/form/${encodeURIComponent(q.experiment)}?question=${encodeURIComponent(q.id)}`,
    { target: "#controls", swap: "innerHTML" });
}

document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea, [contenteditable]")) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "p") {
    stage.togglePresenter();
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
  stage.redraw();
}

// ---- following the teacher, and the class's question --------------------------------------

const questionBox = new QuestionBox(document.getElementById("question"), { role: page.role });
questionBox.show(page.question);
let askedHere = null; // the id of the question this tab opened
let asking = false; // ... while it opens one (its frame may come before the POST's answer)

/** The teacher asks the lesson's question before running it: the form takes the params the
 * question is about (its `params`), and every page shows the question. */
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
  banner: stageEl.querySelector(".follow-banner"),
  shown: () => panels.map((p) => String(p.run.id)),
  onQuestion: (frame) => {
    questionBox.update(frame);
    if (frame.kind === "prediction.open") followQuestion(frame.data);
  },
  show: (run) => {
    heldQuestion = null; // the teacher's run came: it is what the page shows now
    const exp = experiments[run.experiment];
    const prev = lastFollowed;
    const pair = prev && exp?.compare && prev.run.experiment === run.experiment &&
      performance.now() - prev.at < 2000 && panels.length === 1 && panels[0].run.id === prev.run.id;
    const runs = pair ? [prev.run, run] : [run];
    mount(runs, pair ? exp.compare : null);
    history.pushState({ runs: runs.map((r) => r.id) }, "", runUrl(runs));
    // The lesson's form follows too, with the run's params ("Run again" repeats it).
    followForm(runs[0], experiments);
    document.body.dispatchEvent(new Event("procscope:runs"));
    lastFollowed = { run, at: performance.now() };
  },
});

// For people who script the page (and the tests): the live objects, frame costs and the
// count of frames drawn.
window.procscope = { view, clock, get panels() { return panels; }, frameMs: stage.frameMs, drawMs: stage.drawMs, mount,
  follower, redraw: () => stage.redraw(),
  get theme() { return stage.theme; },
  get frames() { return stage.frames; } };

try {
  if (new URLSearchParams(location.search).get("present") === "1" ||
      localStorage.getItem("procscope.presenter") === "1") stage.setPresenter(true);
} catch { /* private mode */ }
refreshProxies();
mountFromUrl(page.run);
follower.start();
stage.start();
