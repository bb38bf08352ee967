// The offline replay: one run, its events inlined in the file, drawn by the page's modules.
//
// Runs in the browser, as the entry module of a replay.html (app/replay_export.py), most
// often opened from disk (file://) with no network at all. What it does that dashboard.js
// does not: the events come from the file instead of a stream, and the run's JSON from the
// file instead of the API. What it shares with it: RunPanel, RunModel, Timeline, View,
// Clock, Playbar and the timeline's pointer and keyboard handling, so that the replay draws
// exactly what the live page draws.

import { RunPanel } from "./run_panel.js";
import { View, Clock, advance } from "./view.js";
import { Playbar } from "./playbar.js";
import { wireTimelineInput } from "./timeline_input.js";
import { THEMES } from "./palette.js";
import { lang, t, savedView, wireLanguageSwitch } from "./i18n.js";

const { run, experiment } = JSON.parse(document.getElementById("replay-data").textContent);
const events = JSON.parse(document.getElementById("replay-events").textContent);
const runUrl = `/api/runs/${encodeURIComponent(run.id)}`;

// The one request the run panel makes (for the run's final JSON, once run.end is in) is
// answered from the file: the reused module needs no offline mode of its own. Anything
// else has no server to go to, and says so.
window.fetch = async (url) => {
  if (String(url) === runUrl) {
    return new Response(JSON.stringify(run), { status: 200, headers: { "Content-Type": "application/json" } });
  }
  throw new TypeError(`a replay has no server to ask for ${url}`);
};

/** A RunPanel whose events are the file's: all of them queued at once, as a stream that
 * replays a finished run's log would deliver them. */
class ReplayPanel extends RunPanel {
  start() {
    this.pending.push(events);
    this.pendingCount += events.length;
    this.arrivals.push([performance.now(), events.length]);
    this.streamState = "ended";
    return this;
  }
}

const stage = document.getElementById("stage");
const timelinesEl = document.getElementById("timelines");
const detailsEl = document.getElementById("details");
const tooltip = document.querySelector(".tooltip");
const view = new View();
const clock = new Clock();
const start = events.find((e) => e.kind === "run.start");
const cores = start?.data?.cores || 1;
const panel = new ReplayPanel(run, { cores, experiment, timelinesEl, detailsEl, tag: null }).start();
panel.timelineEl.querySelector(".run-name")?.removeAttribute("href"); // no server to link to
const panels = [panel];
let theme = THEMES.normal;
let dirty = true;
let lastStats = 0;
let frames = 0;
const frameMs = [];

const runNow = (perfNow) => panel.model.now(perfNow);
const anyLive = () => panel.live;
const playbar = new Playbar(stage.querySelector(".playbar"), {
  view, clock, runNow, anyLive, redraw: () => { dirty = true; },
});
playbar.hidden = false;

wireTimelineInput({
  timelinesEl, tooltip, view, clock, runNow, anyLive, togglePlay: () => playbar.togglePlay(),
  panels: () => panels, theme: () => theme, redraw: () => { dirty = true; },
});

function setPresenter(on) {
  document.body.classList.toggle("presenter", on);
  document.getElementById("presenter-toggle").setAttribute("aria-pressed", String(on));
  theme = THEMES[on ? "presenter" : "normal"];
  dirty = true;
}
document.getElementById("presenter-toggle").addEventListener("click", () => {
  setPresenter(!document.body.classList.contains("presenter"));
});
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea, [contenteditable]")) return;
  if (event.key === "p" && !event.ctrlKey && !event.metaKey && !event.altKey) {
    setPresenter(!document.body.classList.contains("presenter"));
  }
});
new ResizeObserver(() => { dirty = true; }).observe(timelinesEl);

// The language switch (i18n.js): the file reloads in the other language, its time window
// kept and given back once the run has been drawn again, as on the live page.
wireLanguageSwitch(document.querySelector(".lang-switch"), {
  view: () => (view.mode !== "fit" ? { t0: view.t0, t1: view.t1 } : null),
});
let keptView = savedView();

// The frame loop: dashboard.js's, for one run that is not live.
function frame(perfNow) {
  const changed = panel.ingest(perfNow);
  if (keptView && panel.resultReady) {
    view.focus(keptView.t0, keptView.t1);
    keptView = null;
    dirty = true;
  }
  const live = anyLive();
  const end = runNow(perfNow);
  const { clip, stopped } = advance(view, clock, perfNow, end, live);
  if (stopped) dirty = true;
  if (dirty || changed || live || clock.mode === "playing") {
    const t0 = performance.now();
    panel.draw(view, Math.min(clip, end), theme);
    frameMs.push(performance.now() - t0);
    if (frameMs.length > 240) frameMs.shift();
    playbar.update(clip, end);
    frames += 1;
    dirty = false;
  }
  if (perfNow - lastStats > 250) {
    lastStats = perfNow;
    panel.stats(perfNow);
  }
  requestAnimationFrame(frame);
}

const title = (lang === "zh" && experiment?.title_zh) || experiment?.title || run.experiment;
document.title = t("Run %(id)s · %(title)s · procscope replay", { id: run.id, title });
// As on the live page: the live objects, for people who script the page and for the tests.
window.procscope = { view, clock, panels, frameMs, get frames() { return frames; } };
requestAnimationFrame(frame);
