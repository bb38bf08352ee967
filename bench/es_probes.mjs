// Timing viewers for bench.fanout: N clients of a third-party SSE client (npm `eventsource`,
// the WhatWG EventSource for Node), none of ours, each timing the events of the given kinds:
//     delay = CLOCK_MONOTONIC when the client's listener ran - (t0 + the event's t)
// where t0 is the run's run.start `t0_monotonic_ns` (process.hrtime is CLOCK_MONOTONIC on
// Linux, the clock every process of the run stamps with). Usage:
//     node bench/es_probes.mjs MODULE_DIR URL N KINDS LIMIT_S
// prints `ready N` once every client is open, then one JSON line when all have read
// run.end (or at LIMIT_S): [{"ticks", "ended", "emitted": [s...], "delays": [s...]}, ...].
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [moduleDir, url, count, kinds, limit] = process.argv.slice(2);
const { EventSource } = await import(
  pathToFileURL(join(moduleDir, "node_modules", "eventsource", "dist", "index.js")).href);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const timed = kinds.split(",");
const results = [];
let open = 0;
let ended = 0;

function finish() {
  process.stdout.write(JSON.stringify(results) + "\n", () => process.exit(0));
}

for (let i = 0; i < Number(count); i++) {
  const r = { ticks: 0, ended: false, emitted: [], delays: [] };
  results.push(r);
  let t0 = null;
  const source = new EventSource(url);
  source.onopen = () => {
    if (++open === Number(count)) process.stdout.write(`ready ${open}\n`);
  };
  source.addEventListener("run.start", (e) => {
    t0 = JSON.parse(e.data).data.t0_monotonic_ns / 1e9;
  });
  for (const kind of timed) {
    source.addEventListener(kind, (e) => {
      const at = now();
      r.ticks++;
      if (t0 === null) return;
      const emitted = t0 + JSON.parse(e.data).t;
      r.emitted.push(emitted);
      r.delays.push(at - emitted);
    });
  }
  source.addEventListener("run.end", () => {
    r.ended = true;
    source.close();
    if (++ended === Number(count)) finish();
  });
}
setTimeout(finish, Number(limit) * 1000);
