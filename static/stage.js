// The stage: the runs shown, their shared View and Clock, and the one animation frame loop.
//
// Runs in the browser, made once by the page's entry module: dashboard.js (the live page)
// and replay.js (an exported replay), so that both draw, zoom, play and follow the key
// moments the same way. The entry owns which panels are shown (RunPanel, run_panel.js);
// the stage owns when they are drawn. The play bar (playbar.js) and pointer and keyboard on
// the timelines (timeline_input.js) are wired from here.
//
// The frame loop draws only when something changed: new events, the view or the clock
// moved, a resize. While a run is live its "now" edge moves every frame; that, and the
// events that keep arriving (the server sends a batch per flush), are drawn at most
// LIVE_HZ times a second: a watching Chromium shares the cores with the lesson it watches
// (README, Performance). Input (zoom, pan, scrub) and replay draw at the display's rate. A
// hidden tab draws nothing; its events are still folded into the model once a second, so
// nothing piles up for the moment it is shown again.

import { View, Clock, advance } from "./view.js";
import { Playbar } from "./playbar.js";
import { wireTimelineInput } from "./timeline_input.js";
import { THEMES } from "./palette.js";
import { savedView, wireLanguageSwitch } from "./i18n.js";

const query = new URLSearchParams(location.search);
// ?draw=every-frame: the loop as it was (a live run drawn at every animation frame), for
// measuring what the throttling saves (bench/browser.py); ?live_hz=N another live rate.
const EVERY_FRAME = query.get("draw") === "every-frame";
const LIVE_HZ = Math.min(120, Math.max(1, Number(query.get("live_hz")) || 15));

const runIds = (panels) => panels.map((p) => String(p.run.id)).join(",");

export class Stage {
  /**
   * @param {object} opts
   * @param {() => RunPanel[]} opts.panels the panels shown now (the entry may replace them)
   * @param {(base: object) => object} [opts.themeFor] the canvases' sizes from the base theme
   * @param {(panel: RunPanel) => void} [opts.onStats] a few times a second, per panel
   * @param {boolean} [opts.rememberPresenter] keep presenter mode for the next visit
   */
  constructor({ stageEl, timelinesEl, panels, themeFor = (base) => base, onStats = () => {},
    rememberPresenter = false }) {
    this.stageEl = stageEl;
    this.timelinesEl = timelinesEl;
    this.panels = panels;
    this.themeFor = themeFor;
    this.onStats = onStats;
    this.rememberPresenter = rememberPresenter;
    this.view = new View();
    this.clock = new Clock();
    this.theme = THEMES.normal;
    this.dirty = true;
    this.lastStats = 0;
    this.lastDraw = -Infinity;
    this.frameMs = [];
    this.frames = 0; // frames drawn so far: tests wait for the next one instead of for a time
    const redraw = () => this.redraw();
    const runNow = (perfNow) => this.runNow(perfNow);
    const anyLive = () => this.anyLive();
    const { view, clock } = this;
    this.playbar = new Playbar(stageEl.querySelector(".playbar"), { view, clock, runNow, anyLive, redraw });
    wireTimelineInput({
      timelinesEl, tooltip: document.querySelector(".tooltip"), view, clock, runNow, anyLive,
      togglePlay: () => this.playbar.togglePlay(), panels, theme: () => this.theme, redraw,
    });
    new ResizeObserver(redraw).observe(timelinesEl);

    // The language switch (i18n.js): the page reloads in the other language at the same
    // address, so the run shown stays; the time window of a finished run's timelines is
    // kept and given back (in the frame loop) once the run has been shown again.
    wireLanguageSwitch(document.querySelector(".lang-switch"), {
      view: () => {
        const shown = panels();
        return shown.length && !this.anyLive() && view.mode !== "fit"
          ? { t0: view.t0, t1: view.t1, runs: runIds(shown) } : null;
      },
    });
    this.keptView = savedView();

    // A run ended (or its header's key-moment button was pressed): zoom to the lesson's key
    // moments, those of every run shown (compared runs share one time scale).
    timelinesEl.addEventListener("procscope:key-moment", () => {
      const wins = panels().map((p) => p.keyWindow).filter(Boolean);
      if (!wins.length) return;
      view.focus(Math.min(...wins.map((w) => w.t0)), Math.max(...wins.map((w) => w.t1)));
      this.redraw();
    });
    timelinesEl.addEventListener("procscope:redraw", redraw);

    // A hidden tab gets no animation frames: fold its events in once a second, draw nothing.
    setInterval(() => {
      if (!document.hidden) return;
      for (const p of panels()) p.ingest(performance.now(), Infinity);
    }, 1000);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) this.redraw(); });
  }

  redraw() {
    this.dirty = true;
  }

  /** The canvases' sizes again (presenter mode, or compared runs, changed). */
  retheme() {
    const base = THEMES[document.body.classList.contains("presenter") ? "presenter" : "normal"];
    this.theme = this.themeFor(base);
    this.redraw();
  }

  setPresenter(on) {
    document.body.classList.toggle("presenter", on);
    document.getElementById("presenter-toggle").setAttribute("aria-pressed", String(on));
    if (this.rememberPresenter) {
      try { localStorage.setItem("procscope.presenter", on ? "1" : ""); } catch { /* private mode */ }
    }
    this.retheme();
  }

  togglePresenter() {
    this.setPresenter(!document.body.classList.contains("presenter"));
  }

  /** The latest time any shown run has reached. */
  runNow(perfNow) {
    return this.panels().reduce((a, p) => Math.max(a, p.model.now(perfNow)), 0);
  }

  anyLive() {
    return this.panels().some((p) => p.live);
  }

  start() {
    requestAnimationFrame((perfNow) => this.frame(perfNow));
    return this;
  }

  frame(perfNow) {
    const panels = this.panels();
    const { view, clock } = this;
    let changed = false;
    for (const p of panels) changed = p.ingest(perfNow) || changed;
    const kept = this.keptView;
    if (kept && panels.length && panels.every((p) => p.resultReady)) {
      // After the key moment's zoom: the window as it was (if these are still the runs shown).
      if (runIds(panels) === kept.runs) view.focus(kept.t0, kept.t1);
      this.keptView = null;
      this.dirty = true;
    }
    if (panels.length) {
      const live = this.anyLive();
      const end = this.runNow(perfNow);
      const { clip, stopped } = advance(view, clock, perfNow, end, live);
      if (stopped) this.dirty = true;
      // Compared runs show the same tracks (a run without a lock shows an empty Lock track:
      // the absence is the lesson).
      const tracks = new Set(panels.flatMap((p) => p.model.tracks()));
      for (const p of panels) p.timeline.sharedTracks = panels.length > 1 ? tracks : null;
      // What asks for a frame: input or a clock change now; a replay every frame; a live run
      // (new events, its moving edge) at most LIVE_HZ; a finished run's last events at once.
      const liveDue = live && (changed || clock.mode === "live" || EVERY_FRAME) &&
        (EVERY_FRAME || perfNow - this.lastDraw >= 1000 / LIVE_HZ - 2);
      const drawn = panels.every((p) => p.timeline.drawnVersion === p.model.version);
      if (this.dirty || clock.mode === "playing" || liveDue || (!live && (changed || !drawn))) {
        this.lastDraw = perfNow;
        const t0 = performance.now();
        for (const p of panels) p.draw(view, Math.min(clip, p.model.now(perfNow)), this.theme);
        this.frameMs.push(performance.now() - t0);
        if (this.frameMs.length > 240) this.frameMs.shift();
        this.playbar.update(clip, end);
        this.frames += 1;
        this.dirty = false;
      }
      if (perfNow - this.lastStats > 250) {
        this.lastStats = perfNow;
        for (const p of panels) {
          p.stats(perfNow);
          this.onStats(p);
        }
      }
    }
    requestAnimationFrame((next) => this.frame(next));
  }
}
