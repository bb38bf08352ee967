// One run on the page: its stream, its model, its timeline, status, console and result.
//
// Runs in the browser. Network batches are queued as they arrive and folded into the
// model at the next animation frame (at most INGEST_PER_FRAME events per frame, so a
// 100,000-event replay fills in over a few frames instead of freezing the page).
//
// Past ~300 lines on purpose: its parts (stream, status line, console, result, stats)
// all read and write one run's state and DOM; split, they would pass it all around. What
// needs none of that state is apart (cpu_note.js: what the core lanes' note says).

import { EventStream } from "./event_stream.js";
import { RunModel } from "./run_model.js";
import { Timeline } from "./timeline.js";
import { predictionBlock } from "./predict.js";
import { keyMoments, momentsWindow } from "./key_moment.js";
import { isTraceback, printedTraceback } from "./traceback.js";
import { cpuLanesNote } from "./cpu_note.js";
import { isFinal } from "./page_facts.js";
import { lang, t } from "./i18n.js";

const INGEST_PER_FRAME = 25000;
const CONSOLE_LINES = 1500;
const REPLAY_LINES = 400;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function paramsLabel(params, defaults, only) {
  const parts = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (only && !(k in only)) continue;
    if (!only && defaults && JSON.stringify(defaults[k]) === JSON.stringify(v)) continue;
    if (v === true) parts.push(t("%(name)s on", { name: k }));
    else if (v === false) parts.push(t("%(name)s off", { name: k }));
    else parts.push(`${k}=${Array.isArray(v) ? v.join(",") : v}`);
  }
  return parts.join(" · ");
}

/** A traced program's name (`procscope trace`: its `program.name`, app.program_socket);
 * null for a lesson's run. */
export function programName(run) {
  const program = run?.program;
  if (!program) return null;
  return program.name || program.command || t("your program");
}

export class RunPanel {
  constructor(run, { canControl = true, cores, experiment, timelinesEl, detailsEl, tag, names }) {
    this.run = run;
    this.canControl = canControl; // a watch-only viewer gets no Stop and no "Compare with"
    this.experiment = experiment;
    this.tag = tag || null; // "lock on" / "lock off" when compared
    // names: the colour and order registry shared by compared runs (palette.js).
    this.model = new RunModel(run, cores, experiment, names);
    this.pending = [];
    this.signals = []; // proc.signal events: a token holder killed, paused or resumed a process
    this.pendingCount = 0;
    this.liveAtOpen = !isFinal(run.status);
    this.startedMs = run.started_at ? Date.parse(run.started_at) : null;
    this.arrivals = []; // [performance.now(), events] of the last second
    this.delays = [];
    this.drawMs = [];
    this.printed = 0;
    this.consoleClip = Infinity;
    this.resultShown = false; // _finish has begun
    this.resultReady = false; // ... and the result panel shows the run's end (tests wait for it)
    this.streamState = "connecting";
    // Resolves with the run's final JSON once its end is shown (null if the panel goes first):
    // "Run both" of a CPU-bound lesson starts its second side then.
    this.finished = new Promise((resolve) => { this._resolveFinished = resolve; });

    const tpl = document.getElementById("run-timeline-template").content;
    this.timelineEl = tpl.firstElementChild.cloneNode(true);
    this.detailsEl = document.getElementById("run-details-template").content.firstElementChild.cloneNode(true);
    timelinesEl.append(this.timelineEl);
    detailsEl.append(this.detailsEl);
    const q = (root, sel) => root.querySelector(sel);
    this.statusEl = q(this.timelineEl, ".status");
    this.statsEl = q(this.timelineEl, ".run-stats");
    this.stopEl = q(this.timelineEl, ".stop");
    this.cpuNoteEl = q(this.timelineEl, ".cpu-note");
    this.objectsNoteEl = q(this.timelineEl, ".objects-note"); // a program's events counted, not drawn
    this.consoleEl = q(this.detailsEl, ".console");
    this.resultEl = q(this.detailsEl, ".result");
    const name = q(this.timelineEl, ".run-name");
    name.href = run.links?.page || `/runs/${run.id}`;
    // Compared runs are the same lesson: the tag ("lock off") says what differs.
    // The lesson's title in the page's language where its spec has it (else its English);
    // a traced program's is its file (or its command line).
    const zh = lang === "zh" && experiment?.title_zh;
    const title = programName(run) || (zh ? experiment.title_zh : experiment?.title) || run.experiment;
    name.textContent = tag ? `#${run.id}` : `#${run.id} ${title}`;
    name.title = title;
    name.lang = zh ? "zh" : "en";
    const defaults = {};
    for (const [k, p] of Object.entries(experiment?.params?.properties || {})) defaults[k] = p.default;
    // A traced program has no params: its command line says how it was run.
    const label = tag || run.program?.command || paramsLabel(run.params, defaults);
    const shown = q(this.timelineEl, ".run-params");
    shown.textContent = label || t("defaults");
    if (label) shown.translate = false; // the params' names and values, as code
    if (tag) this.timelineEl.dataset.tag = tag;
    this.detailsEl.querySelector("h3 small").textContent = tag ? `#${run.id} · ${tag}` : t("prints in arrival order");
    this.timeline = new Timeline(this.model, q(this.timelineEl, "canvas.cores"), q(this.timelineEl, "canvas.procs"));
    this.stopEl.addEventListener("click", () => this.cancel());
    this._status(run.status);
  }

  start() {
    this.stream = new EventStream(`/api/runs/${this.run.id}/events`, (events) => {
      this.pending.push(events);
      this.pendingCount += events.length;
      const now = performance.now();
      this.arrivals.push([now, events.length]);
    }, (state, detail) => {
      this.streamState = detail ? `${state}: ${detail}` : state;
    }).start();
    return this;
  }

  destroy() {
    this._resolveFinished(null);
    if (this.stream) this.stream.close();
    this.timelineEl.remove();
    this.detailsEl.remove();
  }

  get live() {
    return this.model.endT === null && this.streamState !== "failed";
  }

  async cancel() {
    this.stopEl.disabled = true;
    await fetch(`/api/runs/${this.run.id}`, { method: "DELETE" });
  }

  /** Fold queued network batches into the model; true if anything changed. */
  ingest(perfNow, budget = INGEST_PER_FRAME) {
    let changed = false;
    while (this.pending.length && budget > 0) {
      let batch = this.pending[0];
      if (batch.length > budget) {
        this.pending[0] = batch.slice(budget);
        batch = batch.slice(0, budget);
      } else {
        this.pending.shift();
      }
      budget -= batch.length;
      this.pendingCount -= batch.length;
      this.model.ingest(batch, perfNow);
      for (const e of batch) if (e.kind === "proc.signal") this.signals.push(e); // what_if.js
      changed = true;
      const last = batch[batch.length - 1];
      // Emit-to-screen delay: the run's t=0 on the server's wall clock (run.start's
      // t0_wall; the run's started_at as a fallback) plus the event's t, against our clock.
      const zeroMs = this.model.t0Wall !== null ? this.model.t0Wall * 1000 : this.startedMs;
      if (this.liveAtOpen && zeroMs !== null && last.kind !== "run.end") {
        this.delays.push(Date.now() - (zeroMs + last.t * 1000));
        if (this.delays.length > 30) this.delays.shift();
      }
    }
    if (changed && this.statusEl.dataset.status === "queued") this._status("running");
    if (changed && this.model.end && !this.resultShown) this._finish();
    return changed;
  }

  async _finish() {
    this.resultShown = true;
    this._status(this.model.end.status || "succeeded");
    let run = { ...this.run, status: this.model.end.status, result: this.model.end.result,
      error: this.model.end.error ?? null };
    try {
      const response = await fetch(`/api/runs/${this.run.id}`, { cache: "no-store" });
      if (response.ok) run = await response.json();
    } catch { /* keep what run.end said */ }
    this.run = run;
    this._status(run.status);
    this._result(run);
    this._keyMoments();
    this.stats(performance.now()); // the final counts now, not at the next refresh
    this.resultReady = true;
    document.body.dispatchEvent(new Event("procscope:runs"));
    this._resolveFinished(run);
  }

  /** The lesson's key moments in this run: drawn on the canvas, and the page is asked to
   * zoom there (procscope:key-moment; the button in the header asks again). */
  _keyMoments() {
    const moments = keyMoments(this.model, this.experiment?.key_moments);
    this.timeline.moments = moments;
    this.keyWindow = momentsWindow(moments, this.model.endT ?? 0);
    this.model.version += 1; // the band for their labels: lay out and draw again
    if (!this.keyWindow) return;
    const head = this.timelineEl.querySelector(".run-outcome");
    let button = this.timelineEl.querySelector(".key-moment");
    if (!button) {
      button = el("button", "key-moment", t("Key moment"));
      button.type = "button";
      button.dataset.testid = "key-moment";
      button.addEventListener("click", () => this._askFocus());
      head.before(button); // beside the name: the outcome may take a line of its own
    }
    button.title = moments.map((m) => m.label).join(" · ");
    button.dataset.titleLang = "en"; // the lesson's key moments: its spec's words, in English
    this._askFocus();
  }

  _askFocus() {
    this.timelineEl.dispatchEvent(new CustomEvent("procscope:key-moment", { bubbles: true,
      detail: { window: this.keyWindow } }));
  }

  _status(status) {
    this.statusEl.textContent = t(status);
    this.statusEl.dataset.status = status;
    this.stopEl.hidden = isFinal(status) || !this.canControl;
  }

  /** The outcome in words (the run's JSON says it: the lesson's spec builds it on the
   * server), the traceback if any, the raw result. */
  _result(run) {
    // The outcome in the page's language where the run has it (outcome_zh), else English.
    const zhOut = lang === "zh" && run.outcome_zh ? run.outcome_zh : null;
    const out = zhOut || run.outcome;
    const outLang = zhOut ? "zh" : "en";
    this.resultEl.replaceChildren();
    const head = el("p", `outcome${out?.bad ? " bad" : out ? " good" : ""}`,
      out ? out.text : t("The run %(status)s.", { status: t(run.status) }));
    // The outcome's sentences are the lesson's (its spec's outcome(), on the server).
    if (out) head.lang = outLang;
    this.resultEl.append(head);
    // The same sentence in the run's header, where a shared screen always shows it.
    const short = this.timelineEl.querySelector(".run-outcome");
    short.textContent = out ? out.text : "";
    short.className = `run-outcome${out?.bad ? " bad" : out ? " good" : ""}`;
    short.lang = outLang;
    if (out?.why) this.resultEl.append(Object.assign(el("p", "why", out.why), { lang: outLang }));
    // The class's predictions beside what really happened (app.predictions).
    if (run.prediction) this.resultEl.append(predictionBlock(run.prediction));
    this._compareOffer(run);
    // A traceback only where there is one (traceback.js): a traced program's own, open (it
    // is the user's code); a lesson's folded (the outcome above says it in words, and the
    // frames are the lesson's wiring).
    const program = run.kind === "program" || !!run.program;
    const trace = program ? printedTraceback(this.model.prints, run.pid) : isTraceback(run.error) ? run.error : null;
    if (trace) {
      const det = el("details", "traceback");
      det.dataset.testid = "traceback";
      det.open = program;
      det.append(el("summary", null, t("Traceback")), Object.assign(el("pre", null, trace), { translate: false }));
      this.resultEl.append(det);
    }
    const raw = el("details", "raw");
    raw.append(el("summary", null, t("result JSON")),
      Object.assign(el("pre", null, JSON.stringify(run.result, null, 2)), { translate: false }));
    this.resultEl.append(raw);
  }

  /** "Compare with lock off": the lesson's other side, run now, drawn under this one. */
  _compareOffer(run) {
    const sides = this.experiment?.compare;
    if (this.tag || !sides || sides.length !== 2 || run.status !== "succeeded" || !this.canControl) return;
    const same = (side) => Object.entries(side).every(([k, v]) => JSON.stringify(run.params[k]) === JSON.stringify(v));
    const mine = sides.findIndex(same);
    if (mine < 0) return;
    const other = sides[1 - mine];
    const button = el("button", "compare-with", t("Compare with %(side)s →", { side: paramsLabel(other, null, other) }));
    button.type = "button";
    button.dataset.testid = "compare-with";
    button.title = t("Run the lesson's other side with the same parameters and draw both on one time scale");
    button.addEventListener("click", () => {
      button.disabled = true;
      this.timelineEl.dispatchEvent(new CustomEvent("procscope:compare-with", { bubbles: true,
        detail: { run, params: { ...run.params, ...other }, first: mine === 0, compare: sides } }));
    });
    this.resultEl.append(button);
  }

  /** The status line: events, rate, delay, drops, frame cost. Cheap; call a few times a second. */
  stats(perfNow) {
    const m = this.model;
    while (this.arrivals.length && perfNow - this.arrivals[0][0] > 1000) this.arrivals.shift();
    const rate = this.arrivals.reduce((a, [, k]) => a + k, 0);
    const parts = [t("%(n)s events", { n: m.count.toLocaleString() })];
    if (this.live) parts.push(`${rate.toLocaleString()}/s`);
    else if (m.endT) parts.push(t("%(n)s/s avg", { n: Math.round(m.count / Math.max(m.endT, 0.001)).toLocaleString() }));
    if (this.liveAtOpen && this.delays.length) {
      const sorted = [...this.delays].sort((a, b) => a - b);
      const d = sorted[sorted.length >> 1];
      parts.push(d < 0 || d > 3600e3 ? t("delay ? (clock skew)") : t("delay %(ms)s ms", { ms: Math.round(d) }));
    } else if (!this.liveAtOpen) {
      parts.push(t("replayed from the log"));
    }
    const dropped = m.end?.dropped ?? this.run.dropped ?? 0;
    parts.push(t("%(n)s dropped", { n: dropped }));
    if (m.missing) parts.push(t("%(n)s missing", { n: m.missing }));
    if (m.samplerHz && m.cpuLanes?.mode !== "exact") parts.push(t("kernel sampled at %(hz)s Hz", { hz: Math.round(m.samplerHz) }));
    if (this.drawMs.length) {
      const avg = this.drawMs.reduce((a, b) => a + b, 0) / this.drawMs.length;
      parts.push(t("draw %(ms)s ms", { ms: avg.toFixed(1) }));
    }
    if (this.pendingCount) parts.push(t("%(n)s queued", { n: this.pendingCount.toLocaleString() }));
    if (this.streamState.startsWith("retrying") || this.streamState.startsWith("failed")) {
      const [state, ...why] = this.streamState.split(": ");
      parts.push(state === "failed" ? t("failed: %(why)s", { why: why.join(": ") })
        : t("retrying: %(why)s", { why: why.join(": ") }));
    }
    setText(this.statsEl, parts.join(" · "));
    this._cpuNote();
    const tallies = this.model.objects.tallies();
    this.objectsNoteEl.hidden = !tallies.length;
    setText(this.objectsNoteEl, tallies.length ? `${tallies.join(" · ")} ${t("(past a rate, each process counts an object's events instead of sending each one)")}` : "");
  }

  /** Beside the core lanes: how they were made (cpu.lanes), and what was lost of them. */
  _cpuNote() {
    const note = cpuLanesNote(this.model);
    this.cpuNoteEl.hidden = !note;
    if (!note) return;
    setText(this.cpuNoteEl, note.text);
    this.cpuNoteEl.dataset.mode = note.mode;
    this.cpuNoteEl.classList.toggle("lost", note.lost);
  }

  draw(view, clip, theme) {
    const t0 = performance.now();
    this.timeline.draw(view, clip, theme);
    this.drawMs.push(performance.now() - t0);
    if (this.drawMs.length > 60) this.drawMs.shift();
    this._console(clip);
  }

  _line(e) {
    const lane = this.model.byKey.get(e.pid);
    const line = el("div", e.data.stream === "stderr" ? "line err" : "line");
    const who = el("span", "who", e.proc || lane?.name || String(e.pid));
    if (lane) who.style.setProperty("--c", lane.color);
    line.append(el("span", "t", e.t.toFixed(3)), who, el("span", "txt", e.data.text));
    return line;
  }

  _console(clip) {
    const prints = this.model.prints;
    const box = this.consoleEl;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 30;
    if (clip === Infinity) {
      if (this.consoleClip !== Infinity) {
        box.replaceChildren();
        this.printed = Math.max(0, prints.length - CONSOLE_LINES);
        this.consoleClip = Infinity;
      }
      if (this.printed === prints.length) return;
      const frag = document.createDocumentFragment();
      for (let i = Math.max(this.printed, prints.length - CONSOLE_LINES); i < prints.length; i++) frag.append(this._line(prints[i]));
      this.printed = prints.length;
      box.append(frag);
      while (box.childElementCount > CONSOLE_LINES) box.firstElementChild.remove();
    } else {
      // Replay or pause: the prints the run had made by `clip`, in arrival order.
      const shown = prints.filter((e) => e.t <= clip);
      if (this.consoleClip === shown.length) return;
      this.consoleClip = shown.length;
      box.replaceChildren(...shown.slice(-REPLAY_LINES).map((e) => this._line(e)));
    }
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
}
