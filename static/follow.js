// Follow the teacher: the classroom stream (GET /api/classroom/events), read once per page.
//
// Runs in the browser; started by dashboard.js. Each `run.created` frame is a run that just
// started on the server: a page that follows switches to it at once (no polling, no click);
// a page whose viewer chose to stay on another run shows a banner that offers to jump.
// The `prediction.*` frames go to the question box (predict.js). The stream starts after
// the seq the page was rendered with (page-data `news`), so a run started between the
// render and the stream's opening is not missed; a reconnect resumes with Last-Event-ID.

import { EventStream } from "./event_stream.js";
import { t } from "./i18n.js";

export class Follower {
  /**
   * @param {object} o
   * @param {number} o.after the classroom stream's seq when the page was rendered
   * @param {string|null} o.newest the newest run's id then
   * @param {HTMLElement} o.banner where "Jump to the teacher's run" is offered
   * @param {(run: object) => void} o.show switch the page to this run
   * @param {() => string[]} o.shown the ids of the runs on the page now
   * @param {(frame: object) => void} o.onQuestion prediction.open / .count / .closed
   */
  constructor({ after, newest, banner, show, shown, onQuestion }) {
    this.after = after || 0;
    this.banner = banner;
    this.show = show;
    this.shown = shown;
    this.onQuestion = onQuestion;
    this.following = true;
    this.busy = false; // this tab is starting runs itself: it mounts them, not us
    this.newest = newest ? { id: String(newest) } : null; // the newest run known of
    this.log = []; // [{id, at}] when each run was switched to (Date.now(): for tests, notes)
    banner.addEventListener("click", (event) => {
      if (!event.target.closest("button")) return;
      if (event.target.closest("[data-action=jump]") && this.newest?.links) {
        this.following = true;
        this._switch(this.newest);
      }
      banner.hidden = true;
    });
  }

  start() {
    this.stream = new EventStream(`/api/classroom/events?after=${this.after}`,
      (frames) => { for (const f of frames) this._frame(f); }).start();
    return this;
  }

  /** The viewer chose a run themselves: stay there (unless it is the newest). */
  stay(runId) {
    this.following = !this.newest || String(runId) === String(this.newest.id);
    if (this.following) this.banner.hidden = true;
  }

  _frame(frame) {
    if (frame.kind === "run.created") {
      const run = frame.data;
      if (this.newest && Number(run.id) <= Number(this.newest.id)) return; // a replayed frame
      this.newest = run;
      if (this.busy || this.shown().includes(String(run.id))) return;
      if (this.following) this._switch(run);
      else this._offer(run);
    } else if (frame.kind && frame.kind.startsWith("prediction.")) {
      this.onQuestion(frame);
    }
  }

  _switch(run) {
    this.banner.hidden = true;
    this.show(run);
    this.log.push({ id: String(run.id), at: Date.now() });
    if (this.log.length > 50) this.log.shift();
  }

  _offer(run) {
    const text = document.createElement("span");
    text.textContent = t("The teacher started run #%(id)s (%(experiment)s).", { id: run.id, experiment: run.experiment });
    const jump = document.createElement("button");
    jump.type = "button";
    jump.className = "primary";
    jump.dataset.action = "jump";
    jump.dataset.testid = "follow-jump";
    jump.textContent = t("Jump to #%(id)s", { id: run.id });
    const stay = document.createElement("button");
    stay.type = "button";
    stay.textContent = t("Stay here");
    this.banner.replaceChildren(text, jump, stay);
    this.banner.hidden = false;
  }
}
