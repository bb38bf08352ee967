// The play bar: pause / play / replay, back to live, speed, scrubber, zoom buttons, clock.
//
// Runs in the browser; made once by dashboard.js, which owns the View and the Clock that
// every timeline on the page shares (view.js) and calls update() after each drawn frame.

import { t } from "./i18n.js";

export class Playbar {
  /**
   * @param {HTMLElement} el the .playbar element
   * @param {{view, clock, runNow: (perfNow: number) => number, anyLive: () => boolean,
   *   redraw: () => void}} page what the bar acts on
   */
  constructor(el, { view, clock, runNow, anyLive, redraw }) {
    Object.assign(this, { el, view, clock, runNow, anyLive, redraw });
    this.playBtn = el.querySelector(".play");
    this.liveBtn = el.querySelector(".live");
    this.speedSel = el.querySelector(".speed select");
    this.scrub = el.querySelector(".scrub");
    this.clockOut = el.querySelector(".clock");
    this.playBtn.addEventListener("click", () => this.togglePlay());
    this.liveBtn.addEventListener("click", () => { clock.live(); redraw(); });
    this.speedSel.addEventListener("change", () => {
      clock.setSpeed(performance.now(), Number(this.speedSel.value));
    });
    this.scrub.addEventListener("input", () => {
      clock.seek(performance.now(), Number(this.scrub.value));
      redraw();
    });
    el.querySelectorAll("[data-zoom]").forEach((b) => b.addEventListener("click", () => {
      const now = runNow(performance.now());
      if (b.dataset.zoom === "fit") view.fit();
      else view.zoom(b.dataset.zoom === "in" ? 0.5 : 2, (view.t0 + view.t1) / 2, now, anyLive());
      redraw();
    }));
  }

  set hidden(hidden) {
    this.el.hidden = hidden;
  }

  /** Pause a live run or a replay, play a paused one, replay a finished run from 0. */
  togglePlay() {
    const { clock, view } = this;
    const now = performance.now();
    const end = this.runNow(now);
    if (clock.mode === "playing") clock.pause(now, Math.min(clock.time(now), end));
    else if (clock.mode === "paused") clock.play(now, clock.t >= end - 1e-6 ? 0 : clock.t);
    else if (this.anyLive()) clock.pause(now, end);
    else {
      clock.play(now, 0); // a finished run: replay it from the start
      view.fit();
    }
    this.redraw();
  }

  /** After a drawn frame: the buttons' words, the scrubber and the clock at `clip`. */
  update(clip, end) {
    const { clock } = this;
    const live = this.anyLive();
    const shown = Math.min(clip, end);
    const word = clock.mode === "playing" ? t("Pause") : clock.mode === "paused" ? t("▶ Play")
      : live ? t("Pause") : t("▶ Replay");
    if (this.playBtn.textContent !== word) this.playBtn.textContent = word;
    this.liveBtn.hidden = !(live && clock.mode !== "live");
    this.scrub.max = String(Math.max(end, 0.001));
    if (document.activeElement !== this.scrub) this.scrub.value = String(shown);
    this.clockOut.textContent = `${shown.toFixed(3)} s / ${end.toFixed(3)} s`;
  }
}
