// The offline replay: one run, its events inlined in the file, drawn by the page's modules.
//
// Runs in the browser, as the entry module of a replay.html (app/replay_export.py), most
// often opened from disk (file://) with no network at all. What it does that dashboard.js
// does not: the events come from the file instead of a stream, and the run's JSON from the
// file instead of the API. What it shares with it: RunPanel, RunModel, Timeline and the
// Stage (stage.js: the frame loop, View, Clock, Playbar, the timeline's pointer and keyboard
// handling, the key-moment zoom), so that the replay draws exactly what the live page draws.

import { RunPanel } from "./run_panel.js";
import { Stage } from "./stage.js";
import { lang, t } from "./i18n.js";

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

const timelinesEl = document.getElementById("timelines");
const start = events.find((e) => e.kind === "run.start");
const cores = start?.data?.cores || 1;
const detailsEl = document.getElementById("details");
const panel = new ReplayPanel(run, { cores, experiment, timelinesEl, detailsEl, tag: null }).start();
panel.timelineEl.querySelector(".run-name")?.removeAttribute("href"); // no server to link to
const panels = [panel];
// The live page's stage: its frame loop, play bar, input, language switch and key-moment zoom.
const stage = new Stage({ stageEl: document.getElementById("stage"), timelinesEl, panels: () => panels });
stage.playbar.hidden = false;

document.getElementById("presenter-toggle").addEventListener("click", () => stage.togglePresenter());
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea, [contenteditable]")) return;
  if (event.key === "p" && !event.ctrlKey && !event.metaKey && !event.altKey) stage.togglePresenter();
});

const title = run.program?.name || (lang === "zh" && experiment?.title_zh) || experiment?.title || run.experiment;
document.title = t("Run %(id)s · %(title)s · procscope replay", { id: run.id, title });
document.body.classList.toggle("program-run", Boolean(run.program)); // the legend's items, as the live page
// As on the live page: the live objects, for people who script the page and for the tests.
window.procscope = { view: stage.view, clock: stage.clock, panels, frameMs: stage.frameMs,
  get frames() { return stage.frames; } };
stage.start();
