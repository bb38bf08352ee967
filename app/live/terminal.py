"""`procscope run`: one lesson in the terminal, without the server.

Runs in the user's terminal process. The same path as the server's (the runner, the
reporter, the relay), with the hub and the browser replaced by printing each event.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
from typing import Any

from pydantic import ValidationError

from procscope.kernel import procgroup
from procscope.live import catalog
from procscope.live.launcher import finish, launch
from procscope.pipe.events import Event
from procscope.pipe.relay import Relay


def _line(obj: dict[str, Any]) -> str:
    kind = obj["kind"]
    data = obj["data"] or {}
    who = f"{obj.get('proc') or '-'}[{obj.get('pid') or '-'}]"
    if kind == "print":
        detail = data.get("text", "")
    else:
        detail = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in data.items()
                          if k not in ("traceback",))
        if data.get("traceback"):  # None: a lesson that failed in its own words
            detail += "\n" + data["traceback"].rstrip()
    cpu = obj.get("cpu")
    core = f"cpu{cpu}" if cpu is not None else "    "
    return f"{obj['t']:9.4f} {core} {who:<22} {kind:<13} {detail}"


def run_in_terminal(experiment: str, settings: dict[str, Any], as_json: bool = False) -> int:
    """Run one experiment, print its events live and its result; 0 if it succeeded."""
    if experiment not in catalog.SPECS:
        print(f"procscope run: unknown experiment {experiment!r}; valid: "
              f"{', '.join(sorted(catalog.SPECS))}", file=sys.stderr)
        return 2
    try:
        params = catalog.PARAMS[experiment](**settings).model_dump()
    except ValidationError as e:
        for err in e.errors():
            field = ".".join(str(part) for part in err["loc"])
            print(f"procscope run: {field}: {err['msg']}", file=sys.stderr)
        return 2

    procgroup.become_subreaper()  # a run's orphans come to us, and we reap them
    batches: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    relay = Relay(lambda run_id, events: batches.put(("events", events)),
                  lambda run_id: batches.put(("eof", None)))
    relay.start()
    process, workdir = launch(relay, "1", experiment, params, max_events=10_000_000)
    stop_reason: list[str] = []

    def interrupt(signum: int, frame: Any) -> None:
        if stop_reason:
            return
        stop_reason.append("cancelled")
        assert process.pid is not None
        # The escalation waits (for setsid, for the grace period): not in a handler.
        threading.Thread(target=procgroup.stop_group, args=(process.pid, 1.0,
                                                            frozenset({process.pid})),
                         daemon=True).start()

    previous = signal.signal(signal.SIGINT, interrupt)
    end: dict[str, Any] = {}
    reader_gone: list[bool] = []
    try:
        while not end:
            what, payload = batches.get()
            if what == "eof":
                finish(relay, "1", process, workdir, stop_reason[0] if stop_reason else None,
                       1.0)
                continue
            events: list[Event] = payload
            for event in events:
                if event.kind == "run.end":
                    end = event.obj["data"]
                if reader_gone:
                    continue
                try:
                    print(event.json.decode() if as_json else _line(event.obj), flush=True)
                except BrokenPipeError:  # e.g. `procscope run ... | head`: stop the run
                    reader_gone.append(True)
                    interrupt(signal.SIGPIPE, None)
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        signal.signal(signal.SIGINT, previous)
        relay.stop()
    if reader_gone:
        return 1
    if not as_json:
        print(f"status: {end['status']}")
        print("result: " + json.dumps(end.get("result"), ensure_ascii=False))
        if end.get("error"):
            print("error:\n" + str(end["error"]), file=sys.stderr)
    return 0 if end["status"] == "succeeded" else 1
