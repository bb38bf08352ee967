// What if? A token holder taps a process of a live run and kills, pauses or resumes it.
//
// Runs in the browser; wired once by dashboard.js. A tap or click on a lane picks its
// process (timeline_input.js sends `procscope:pick` with what is under the pointer); a
// token holder's page then offers SIGKILL / SIGSTOP / SIGCONT for that pid, sent to
// POST /api/runs/{id}/signal (the server checks the pid is in the run's process group).
// Each signal comes back on the run's stream as a `proc.signal` event, on every page: a
// note under the run's head says what it means (a Lock's holder killed: the others wait
// forever, and only Stop ends the run). The bar goes when the run ends (signalNotes).

import { t, told } from "./i18n.js";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

const ACTIONS = [["SIGKILL", "Kill", "kill"], ["SIGSTOP", "Pause", "stop"], ["SIGCONT", "Resume", "cont"]];
// (The labels go through t() where they are shown: t("Kill"), t("Pause"), t("Resume").)

export function wireWhatIf({ timelinesEl, canControl }) {
  if (!canControl) return;
  timelinesEl.addEventListener("procscope:pick", (event) => {
    const { panel, info } = event.detail;
    if (!panel.live) return;
    const row = info.rows.find(([k]) => k === "pid");
    const pid = row ? parseInt(String(row[1]), 10) : NaN;
    if (!Number.isInteger(pid) || pid <= 1) return;
    offer(panel, pid);
  });
}

function offer(panel, pid) {
  panel.timelineEl.querySelector(".what-if")?.remove();
  const lane = panel.model.byKey?.get(pid);
  const bar = el("div", "what-if");
  bar.dataset.testid = "what-if";
  bar.dataset.pid = String(pid);
  bar.append(el("span", "who", t("What if… %(name)s (pid %(pid)s)", { name: lane?.name || t("process"), pid })));
  for (const [signal, label, id] of ACTIONS) {
    const button = el("button", signal === "SIGKILL" ? "danger" : null, t(label));
    button.type = "button";
    button.dataset.testid = `what-if-${id}`;
    button.title = t("%(signal)s to pid %(pid)s", { signal, pid });
    button.addEventListener("click", () => send(panel, pid, signal, bar));
    bar.append(button);
  }
  const close = el("button", "close", "×");
  close.type = "button";
  close.title = t("Close");
  close.addEventListener("click", () => bar.remove());
  bar.append(close, el("span", "error"));
  panel.timelineEl.querySelector(".run-head").after(bar);
}

async function send(panel, pid, signal, bar) {
  const error = bar.querySelector(".error");
  error.textContent = "";
  const response = await fetch(`/api/runs/${encodeURIComponent(panel.run.id)}/signal`, {
    method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ pid, signal }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    error.textContent = told(body) ?? t("refused (%(status)s)", { status: response.status });
  }
}

/** The notes of the signals a run was sent: called a few times a second for each panel.
 * A run that has ended takes no more signals: its what-if bar goes. */
export function signalNotes(panel) {
  if (!panel.live) panel.timelineEl.querySelector(".what-if")?.remove();
  const signals = panel.signals || [];
  if (panel.notedSignals === signals.length) return;
  panel.notedSignals = signals.length;
  let box = panel.timelineEl.querySelector(".what-if-note");
  if (!box) {
    box = el("div", "what-if-note");
    box.dataset.testid = "what-if-note";
    box.setAttribute("role", "status");
    panel.timelineEl.querySelector(".run-head").after(box);
  }
  box.replaceChildren(...signals.map((e) => el("p", null, says(panel.model, e))));
}

function says(model, e) {
  const target = e.data.target ?? e.pid;
  const lane = model.byKey?.get(target);
  const name = lane?.name || `pid ${target}`;
  const at = e.t.toFixed(3);
  if (e.data.signal === "SIGSTOP") return t("%(name)s was paused (SIGSTOP) at %(t)s s: it holds whatever it held, and waits.", { name, t: at });
  if (e.data.signal === "SIGCONT") return t("%(name)s was resumed (SIGCONT) at %(t)s s.", { name, t: at });
  const holds = model.lock?.holds || [];
  const held = holds.some((s) => (s.lane === lane || s.lane?.pid === target) && s.t0 <= e.t &&
    (s.t1 === null || s.t1 >= e.t));
  if (held) {
    return t("%(name)s was killed (SIGKILL) at %(t)s s while holding the Lock. A Lock is released only by its holder, so every process waiting for it will wait forever: the run cannot end by itself (■ Stop ends it).",
      { name, t: at });
  }
  return t("%(name)s was killed (SIGKILL) at %(t)s s: whatever it was doing is lost.", { name, t: at });
}
