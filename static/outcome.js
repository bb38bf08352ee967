// A run's outcome in words, from its `result` (CONTRACT.md, Experiments table).
//
// Runs in the browser. One sentence per lesson that says what happened and why it matters;
// a lesson not listed here (or a result missing a field) falls back to the raw JSON, which
// the result panel always shows underneath anyway.

const n = (x) => (typeof x === "number" ? x : "?");
const s = (k, one, many) => `${k} ${k === 1 ? one : many || one + "s"}`;
const secs = (x) => (typeof x === "number" ? `${x.toFixed(x < 1 ? 3 : 2)} s` : "?");

const SENTENCES = {
  ticket_rush(r) {
    if (typeof r.sold !== "number") return null;
    const over = r.oversold ?? Math.max(0, r.sold - r.tickets);
    let text = `Sold ${s(r.sold, "ticket")}, stock was ${n(r.tickets)} — `;
    text += over ? `${over} oversold` : "none oversold";
    if (r.torn_reads) text += `; ${s(r.torn_reads, "buyer")} read a half-written file`;
    text += ".";
    const why = r.lock
      ? "With the Lock, buyers took turns: each one read the stock only after the previous one had written it."
      : "Without the Lock, buyers read the stock at the same time, before anyone wrote it back.";
    return { text, why, bad: over > 0 || r.torn_reads > 0 };
  },
  join(r) {
    if (typeof r.elapsed !== "number") return null;
    if (r.joined === false) {
      return { text: `The main printed its total after ${secs(r.elapsed)}: it did not wait for the workers (longest ${secs(r.max)}).`,
        why: "Without join() the main runs on while its children still work." };
    }
    return { text: `All workers done in ${secs(r.elapsed)}: about the longest task (${secs(r.max)}), not the sum (${secs(r.sum)}).`,
      why: "The workers ran at the same time; join() only waited for the slowest." };
  },
  process_start(r) {
    if (r.main_printed_first === undefined) return null;
    return { text: r.main_printed_first
      ? `The main printed first; the child (pid ${n(r.child_pid)}, parent ${n(r.child_ppid)}) printed ${n(r.child_printed_after_ms)} ms later.`
      : `The child (pid ${n(r.child_pid)}) printed before the main this time.`,
    why: "start() only asks the OS for a new process; the main carries on at once." };
  },
  daemon(r) {
    if (r.daemon_finished === undefined) return null;
    let text = r.daemon_finished ? "The daemon finished its work." :
      `The daemon was terminated when the main's code ended (exit code ${n(r.daemon_exitcode)}).`;
    if (r.grandchild_error) text += ` Its child could not start: ${r.grandchild_error}.`;
    return { text, why: "A daemonic process dies with its parent's code, and may not have children." };
  },
  zombie_orphan(r) {
    if (r.mode === "zombie") {
      return { text: r.zombie_seen ? `The child (pid ${n(r.child_pid)}) was a zombie (Z) until its parent reaped it.`
        : "The zombie state was not observed this time.",
      why: "An exited child stays in the process table until its parent collects its exit status." };
    }
    if (r.mode === "orphan") {
      return { text: `The orphan (pid ${n(r.orphan_pid)}) was re-parented from ${n(r.ppid_before)} to ${n(r.ppid_after)}.`,
        why: "When a parent dies first, its children are adopted (here by the server, a subreaper)." };
    }
    return null;
  },
  terminate(r) {
    if (r.alive_right_after_terminate === undefined) return null;
    let text = `Right after terminate(), is_alive() said ${r.alive_right_after_terminate}; after join(), ${r.alive_after_join} (exit code ${n(r.exitcode)}).`;
    if (r.grandchild_survived !== undefined && r.grandchild_survived !== null) {
      text += r.grandchild_survived ? ` The grandchild survived, re-parented to ${n(r.grandchild_ppid_after)}.` : " The grandchild did not survive.";
    }
    return { text, why: "terminate() sends SIGTERM and returns at once; only join() waits for the end." };
  },
  pool_apply(r) {
    if (typeof r.elapsed !== "number") return null;
    return { text: `${r.mode}: ${s((r.results || []).length, "task")} in ${secs(r.elapsed)} on ${s((r.worker_pids || []).length, "worker")}, at most ${n(r.max_concurrent)} at once (serial would be ${secs(r.serial_estimate)}).`,
      why: r.mode === "apply" ? "apply() blocks until each task is done: one at a time." :
        "apply_async() hands all tasks to the pool: they run side by side." };
  },
  pool_callback(r) {
    if (!r.callback_pids) return null;
    const inMain = r.callback_pids.every((p) => p === r.main_pid);
    return { text: `${s(r.callback_pids.length, "page")} fetched by ${s((r.fetch_pids || []).length, "worker")}; every callback ran in ${inMain ? "the main process" : "several processes"} (pid ${n(r.main_pid)}).`,
      why: "A Pool callback runs in the parent, in its result-handler thread, not in the worker." };
  },
  executor_map(r) {
    if (!r.results) return null;
    return { text: `map() returned ${s(r.results.length, "result")} in input order${r.out_of_order ? ", although the tasks finished out of order" : ""}, on ${s((r.worker_pids || []).length, "worker")}.`,
      why: "Executor.map yields results in the order of its inputs, whatever order they finish in." };
  },
  gil(r) {
    if (typeof r.speedup !== "number") return null;
    return { text: `${r.mode}: ${secs(r.cpu_seconds)} of CPU in ${secs(r.elapsed)} — a speed-up of ${r.speedup.toFixed(2)}× on ${n(r.cores)} cores.`,
      why: r.mode === "threads" ? "Threads take turns holding the GIL: one core at a time." :
        "Each process has its own interpreter and GIL: they run on several cores at once." };
  },
  queue_basics(r) {
    if (!r.got) return null;
    return { text: `Got ${JSON.stringify(r.got)}${r.fifo ? " (first in, first out)" : ""}; Full raised: ${r.full_raised}; Empty raised: ${r.empty_raised}.`,
      why: "A bounded Queue blocks (or raises after a timeout) when full, and get() does the same when empty." };
  },
  producer_consumer(r) {
    if (typeof r.produced !== "number") return null;
    return { text: `${r.mode}: produced ${r.produced}, consumed ${r.consumed}${r.hung ? " — the consumer hung waiting for more" : ""}.`,
      why: r.hung ? "Nothing told the consumer that production was over." :
        "The consumer knew when to stop (a sentinel, or JoinableQueue.join())." , bad: !!r.hung };
  },
  socket_server(r) {
    if (typeof r.replies_ok !== "number") return null;
    return { text: `${r.mode}: ${r.replies_ok}/${n(r.replies_expected)} replies, at most ${n(r.max_concurrent_handlers)} handlers at once, in ${s((r.handler_pids || []).length, "process", "processes")}.`,
      why: "One process per connection grows with the clients; a Pool caps it." };
  },
};

/** {text, why, bad} for a finished run, or null when there is nothing to say in words. */
export function outcome(run) {
  if (run.status === "failed") {
    const last = (run.error || "").trim().split("\n").pop();
    return { text: `The run failed: ${last || "see the traceback"}.`, why: "", bad: true };
  }
  if (run.status === "cancelled") return { text: "The run was cancelled: every process of it was stopped.", why: "" };
  if (run.status === "timed_out") return { text: "The run hit the server's time limit and was stopped.", why: "", bad: true };
  const r = run.result;
  const say = SENTENCES[run.experiment];
  if (!r || !say) return null;
  try {
    return say(r);
  } catch {
    return null;
  }
}
