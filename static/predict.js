// Predict, then run: the question box on every page, and the answers beside a run's outcome.
//
// Runs in the browser. The teacher opens a lesson's question (POST /api/prediction); every
// page hears of it on the classroom stream (follow.js) and shows it: a student answers
// (POST /api/prediction/answers: one answer a browser, a cookie says which), everyone sees
// how many have answered (never what, until the run). The run that closes it keeps the
// answers; `predictionBlock` draws their distribution beside the run's real outcome.
// Every text here is set with textContent: answers and questions are never HTML. The
// question is shown in the page's language first (its spec's question_zh), then the other.

import { lang, t, told } from "./i18n.js";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function fmt(v, unit) {
  const n = typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v);
  return unit ? `${n} ${t(unit)}` : n;
}

export class QuestionBox {
  /** @param {HTMLElement} box  @param {{role: string}} o */
  constructor(box, { role }) {
    this.box = box;
    this.teacher = role === "admin";
    this.q = null;
  }

  /** A frame of the classroom stream (prediction.open / .count / .closed), or a question. */
  update(frame) {
    if (frame.kind === "prediction.count") {
      if (this.q && this.q.id === frame.data.id) this.q.total = frame.data.total;
      this._count();
      return;
    }
    this.show(frame.data);
  }

  show(q) {
    if (!q) return;
    if (this.q && this.q.id === q.id && q.open && this.q.open) { // the same, maybe newer
      this.q.total = Math.max(this.q.total || 0, q.total || 0);
      return this._count();
    }
    this.q = { ...q };
    if (!q.open) {
      this.box.hidden = true;
      return;
    }
    this._render();
  }

  _render() {
    const q = this.q;
    const yours = this._yours();
    this.box.replaceChildren();
    this.box.append(el("p", "label", this.teacher ? t("Your class is answering:") : t("Predict before you see it:")));
    const texts = [["text", q.question, "en"], ["text zh", q.question_zh, "zh"]].filter(([, s]) => s);
    if (lang === "zh") texts.reverse();
    for (const [cls, s, l] of texts) {
      const p = el("p", cls, s);
      p.lang = l;
      this.box.append(p);
    }
    if (!this.teacher) {
      const form = el("form", "answer");
      if (q.choices) {
        for (const c of q.choices) {
          const label = el("label", "choice");
          const input = el("input");
          input.type = "radio";
          input.name = "answer";
          input.value = c;
          input.dataset.testid = "prediction-choice";
          label.append(input, el("span", null, c));
          form.append(label);
        }
      } else {
        const input = el("input");
        input.type = "number";
        input.name = "answer";
        input.min = q.ge;
        input.max = q.le;
        input.step = "any";
        input.required = true;
        input.inputMode = "decimal";
        input.dataset.testid = "prediction-answer";
        input.setAttribute("aria-label", t("Your answer"));
        form.append(input);
        if (q.unit) form.append(el("span", "unit", t(q.unit)));
      }
      const send = el("button", "primary", yours === null ? t("Answer") : t("Change my answer"));
      send.type = "submit";
      send.dataset.testid = "prediction-submit";
      form.append(send);
      form.addEventListener("submit", (event) => { event.preventDefault(); this._answer(form); });
      this.box.append(form);
      this.box.append(el("p", "yours", yours === null ? "" : t("Your answer: %(answer)s", { answer: fmt(yours, q.unit) })));
      this.box.querySelector(".yours").dataset.testid = "prediction-yours";
    } else {
      this.box.append(el("p", "hint", t("Press ▶ Run when the answers are in: they close as it starts.")));
      const close = el("button", null, t("Close without a run"));
      close.type = "button";
      close.dataset.testid = "close-question";
      close.addEventListener("click", () => fetch("/api/prediction", { method: "DELETE" }));
      this.box.append(close);
    }
    const count = el("p", "count");
    count.dataset.testid = "prediction-count";
    this.box.append(count);
    this.box.append(el("p", "error"));
    this.box.hidden = false;
    this._count();
  }

  _count() {
    const node = this.box.querySelector(".count");
    if (!node || !this.q) return;
    const n = this.q.total || 0;
    node.textContent = n === 1 ? t("1 answer so far") : t("%(n)s answers so far", { n });
    node.dataset.total = String(n);
  }

  _yours() {
    try {
      const v = localStorage.getItem(`procscope.answer.${this.q.id}`);
      return v === null ? null : JSON.parse(v);
    } catch { return null; }
  }

  async _answer(form) {
    const data = new FormData(form);
    const raw = data.get("answer");
    const error = this.box.querySelector(".error");
    error.textContent = "";
    if (raw === null || raw === "") { error.textContent = t("Choose or type an answer first."); return; }
    const answer = this.q.choices ? String(raw) : Number(raw);
    const response = await fetch("/api/prediction/answers", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ answer }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      error.textContent = told(body) ?? String(response.status);
      return;
    }
    try { localStorage.setItem(`procscope.answer.${this.q.id}`, JSON.stringify(body.answer)); } catch { /* private */ }
    this.q.total = Math.max(this.q.total || 0, body.total);
    this.box.querySelector(".yours").textContent = t("Your answer: %(answer)s", { answer: fmt(body.answer, this.q.unit) });
    form.querySelector("button[type=submit]").textContent = t("Change my answer");
    this._count();
  }
}

/** Answers as bars: choices as they are; numbers as they are, or in ~10 bins if many. */
export function bars(prediction) {
  const answers = prediction.answers || [];
  if (prediction.choices || answers.length <= 12) {
    return answers.map(([v, n]) => ({ label: fmt(v, ""), lo: v, hi: v, n }));
  }
  const lo = Number(answers[0][0]);
  const hi = Number(answers[answers.length - 1][0]);
  const width = (hi - lo) / 10 || 1;
  const bins = Array.from({ length: 10 }, (_, i) => ({ lo: lo + i * width, hi: lo + (i + 1) * width, n: 0 }));
  for (const [v, n] of answers) bins[Math.min(9, Math.floor((Number(v) - lo) / width))].n += n;
  return bins.map((b) => ({ ...b, label: `${fmt(+b.lo.toFixed(2), "")}–${fmt(+b.hi.toFixed(2), "")}` }));
}

/** The class's answers beside the run's real outcome (the run's JSON `prediction`). */
export function predictionBlock(prediction) {
  const box = el("section", "prediction-result");
  box.dataset.testid = "prediction-result";
  box.append(el("h4", null, prediction.total === 1 ? t("The class predicted (1 answer)")
    : t("The class predicted (%(n)s answers)", { n: prediction.total })));
  const asked = el("p", "asked", lang === "zh" && prediction.question_zh ? prediction.question_zh : prediction.question);
  asked.lang = lang === "zh" && prediction.question_zh ? "zh" : "en";
  box.append(asked);
  const truth = prediction.truth;
  const rows = bars(prediction);
  const top = Math.max(1, ...rows.map((r) => r.n));
  // The bar that holds the truth (or, for a number between bars, the nearest one).
  let hit = -1;
  if (truth !== null && truth !== undefined) {
    if (prediction.choices) hit = rows.findIndex((r) => String(r.lo) === String(truth) ||
      (typeof truth === "boolean" && r.lo === (truth ? "yes" : "no")));
    else {
      let best = Infinity;
      rows.forEach((r, i) => {
        const d = Number(truth) < r.lo ? r.lo - truth : Number(truth) > r.hi ? truth - r.hi : 0;
        if (d < best) { best = d; hit = i; }
      });
    }
  }
  const list = el("ol", "bars");
  rows.forEach((r, i) => {
    const li = el("li", i === hit ? "bar truth" : "bar");
    li.append(el("span", "answer", r.label));
    const track = el("span", "track");
    const fill = el("span", "fill");
    fill.style.width = `${(100 * r.n) / top}%`;
    track.append(fill);
    li.append(track, el("span", "n", r.n));
    list.append(li);
  });
  box.append(list);
  const real = el("p", "truth", truth === null || truth === undefined ? t("The run has no answer to set them against.")
    : t("What really happened: %(truth)s", { truth: fmt(truth, prediction.unit) }));
  real.dataset.testid = "prediction-truth";
  box.append(real);
  return box;
}
