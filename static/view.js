// The time window and the clock that every timeline on the page shares.
//
// Runs in the browser. Compared runs draw against one View, so the same second is the same
// pixel column in both; one Clock drives replay of all of them together.
//
// View modes: "fit" shows the whole run and grows with it (the default: a teacher sees
// everything so far); "follow" keeps the zoom and slides with the live edge (after zooming
// in on a live run); "free" stays where the user panned or zoomed.
// Clock modes: "live" shows everything received; "paused" freezes the picture at t while
// the stream keeps arriving underneath; "playing" replays from t at `speed`.

const STEPS = [1, 1.5, 2, 3, 4, 5, 6, 8, 10];
const MIN_SPAN = 0.0005;

/** The smallest "round" number >= x (so a growing run rescales in calm steps). */
export function roundUp(x) {
  if (x <= 0) return 1;
  const pow = 10 ** Math.floor(Math.log10(x));
  for (const s of STEPS) if (s * pow >= x - 1e-12) return s * pow;
  return 10 * pow;
}

export class View {
  constructor() {
    this.t0 = 0;
    this.t1 = 1;
    this.mode = "fit";
  }

  /** Called every frame with the latest time any shown run has reached. */
  update(now, live) {
    const span = this.t1 - this.t0;
    if (this.mode === "fit") {
      this.t0 = 0;
      this.t1 = live ? roundUp(Math.max(0.2, now * 1.04)) : Math.max(0.001, now * 1.02);
    } else if (this.mode === "follow") {
      this.t1 = now + span * 0.04;
      this.t0 = this.t1 - span;
    }
  }

  zoom(factor, at, now, live) {
    const span = Math.max(MIN_SPAN, (this.t1 - this.t0) * factor);
    const frac = (at - this.t0) / (this.t1 - this.t0);
    this.t0 = at - frac * span;
    this.t1 = this.t0 + span;
    if (this.t0 < -span * 0.05) {
      this.t1 -= this.t0 + span * 0.05;
      this.t0 = -span * 0.05;
    }
    if (factor > 1 && this.t0 <= 0 && this.t1 >= now) this.mode = "fit";
    else this.mode = live && this.t1 >= now ? "follow" : "free";
  }

  pan(dt, now, live) {
    this.t0 += dt;
    this.t1 += dt;
    this.mode = live && this.t1 >= now ? "follow" : "free";
  }

  fit() {
    this.mode = "fit";
  }

  /** Show [t0, t1] (a run's key moments, key_moment.js) and stay there. */
  focus(t0, t1) {
    this.t0 = t0;
    this.t1 = Math.max(t1, t0 + MIN_SPAN);
    this.mode = "free";
  }
}

export class Clock {
  constructor() {
    this.mode = "live";
    this.t = 0;
    this.speed = 1;
    this.since = 0; // performance.now() when t was last set while playing
  }

  /** The run time to show; Infinity = everything received so far. */
  time(perfNow) {
    if (this.mode === "live") return Infinity;
    if (this.mode === "paused") return this.t;
    // A frame's timestamp can be older than the click that pressed play: not before t.
    return this.t + (Math.max(0, perfNow - this.since) / 1000) * this.speed;
  }

  pause(perfNow, current) {
    this.t = current;
    this.mode = "paused";
    this.since = perfNow;
  }

  play(perfNow, from) {
    this.t = from;
    this.since = perfNow;
    this.mode = "playing";
  }

  seek(perfNow, t) {
    this.t = t;
    this.since = perfNow;
    if (this.mode === "live") this.mode = "paused";
  }

  setSpeed(perfNow, speed) {
    this.t = this.time(perfNow);
    if (!Number.isFinite(this.t)) this.t = 0;
    this.since = perfNow;
    this.speed = speed;
  }

  live() {
    this.mode = "live";
  }
}

/**
 * One frame of the page's time, where the runs shown have reached `end` (`live`: one of
 * them still runs). A replay that got to the end stops there: paused, or live again while a
 * run is live. Then the view moves with the runs. Returns { clip, stopped }: the time to
 * draw up to, and whether the replay stopped in this frame (so the frame must be drawn).
 * The live page's frame loop and an offline replay's (dashboard.js, replay.js) both call it.
 */
export function advance(view, clock, perfNow, end, live) {
  let stopped = false;
  if (clock.mode === "playing" && clock.time(perfNow) >= end) {
    if (live) clock.live();
    else clock.pause(perfNow, end);
    stopped = true;
  }
  view.update(end, live && clock.mode === "live");
  return { clip: clock.time(perfNow), stopped };
}
