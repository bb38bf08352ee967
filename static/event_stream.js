// Reads a run's events from GET /api/runs/{id}/events (text/event-stream), in batches.
//
// Runs in the browser. Why fetch() and not EventSource: an EventSource dispatches each
// frame under its `event:` name, and there is no wildcard listener. Our frames are named
// by kind, and lessons add kinds freely (each its own, named in its spec), so a
// listener list would silently drop every kind it does not know: the page would stop
// telling the truth. fetch() reads the very same stream, hands us every frame, and lets us
// parse a whole network chunk at once (one callback per chunk, not per event).
//
// The two behaviours of EventSource we rely on are kept: on a dropped connection we resume
// with Last-Event-ID (the server replays exactly the rest, docs/api.md "Event streams");
// and after `run.end` we stop for good, so the stream's normal end never turns into a
// reconnect that replays everything (the same section).

const RETRY_MS = [250, 500, 1000, 2000, 5000];

export class EventStream {
  /**
   * @param {string} url the run's SSE URL
   * @param {(events: object[]) => void} onBatch called with the events of each chunk
   * @param {(state: string, detail?: string) => void} onState "open" | "retrying" | "ended" | "failed"
   */
  constructor(url, onBatch, onState = () => {}) {
    this.url = url;
    this.onBatch = onBatch;
    this.onState = onState;
    this.lastSeq = 0;
    this.ended = false;
    this.closed = false;
    this.attempt = 0;
    this.abort = null;
  }

  start() {
    this._connect();
    return this;
  }

  /** Stop reading (the page moved on, or the run ended). */
  close() {
    this.closed = true;
    if (this.abort) this.abort.abort();
  }

  async _connect() {
    if (this.closed) return;
    this.abort = new AbortController();
    const headers = { Accept: "text/event-stream" };
    if (this.lastSeq) headers["Last-Event-ID"] = String(this.lastSeq);
    let response;
    try {
      response = await fetch(this.url, { headers, signal: this.abort.signal, cache: "no-store" });
    } catch (err) {
      return this._retry(String(err));
    }
    if (!response.ok) {
      // 404: the run is not on this server (restarted?); 401/403: no token. No retry.
      this.onState("failed", `${response.status} ${response.statusText}`);
      return;
    }
    this.attempt = 0;
    this.onState("open");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const cut = buffer.lastIndexOf("\n\n");
        if (cut < 0) continue;
        const events = this._parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (events.length) this.onBatch(events);
        if (this.ended) {
          reader.cancel().catch(() => {});
          this.onState("ended");
          return;
        }
      }
    } catch (err) {
      if (this.closed) return;
      return this._retry(String(err));
    }
    if (!this.ended && !this.closed) this._retry("the stream ended before run.end");
  }

  _retry(why) {
    if (this.closed || this.ended) return;
    const wait = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.onState("retrying", why);
    setTimeout(() => this._connect(), wait);
  }

  /** Frames separated by blank lines; we only need `data:` (the JSON carries seq and kind). */
  _parse(text) {
    const events = [];
    for (const frame of text.replace(/\r\n?/g, "\n").split("\n\n")) {
      let data = null;
      for (const line of frame.split("\n")) {
        if (line.startsWith("data:")) {
          const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
          data = data === null ? value : data + "\n" + value;
        }
      }
      if (data === null) continue; // a ping (": ...") or a retry: frame
      let event;
      try {
        event = JSON.parse(data);
      } catch {
        continue;
      }
      if (event.seq <= this.lastSeq) continue; // already have it (a resumed stream)
      this.lastSeq = event.seq;
      events.push(event);
      if (event.kind === "run.end") {
        this.ended = true;
        break;
      }
    }
    return events;
  }
}
