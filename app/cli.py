"""The `procscope` command: serve the dashboard, or run one lesson in the terminal.

Runs in the user's terminal. Imports stay inside the functions: a spawned run re-imports
the main module it was started from (this one, through the console script), and it must
not pull the web stack in with it (DESIGN.md, pitfalls).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procscope",
        description="A live dashboard of what Python's multiprocessing really does. "
        "Without a command, serve the dashboard.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--token", default=None,
                        help="access token for starting and cancelling runs (default: "
                        "$PROCSCOPE_TOKEN; generated and printed when --host is not loopback)")
    parser.add_argument("--run-timeout", type=float, default=300.0, metavar="SECONDS",
                        help="wall-clock limit of one run (default 300)")
    parser.add_argument("--max-events", type=int, default=1_000_000, metavar="N",
                        help="events kept per run; past it, only lifecycle events are kept "
                        "and the rest are counted as dropped (default 1000000)")
    parser.add_argument("--sample-hz", type=float, default=100.0, metavar="HZ",
                        help="how often the kernel sampler reads /proc for live runs "
                        "(1-1000, default 100)")
    parser.add_argument("--sample-budget", type=float, default=0.15, metavar="SHARE",
                        help="share of one core the sampler may use (default 0.15); with "
                        "many processes it then samples less often, and says so")
    parser.add_argument("--keep-runs", type=int, default=500, metavar="N",
                        help="finished runs kept, with their events (default 500); older "
                        "ones are forgotten")
    parser.add_argument("--max-runs", type=int, default=8, metavar="N",
                        help="runs alive at once (default 8); past it, POST /api/runs is 429")
    parser.add_argument("--max-processes", type=int, default=2000, metavar="N",
                        help="processes of runs alive at once (default 2000)")
    parser.add_argument("--max-streams", type=int, default=1000, metavar="N",
                        help="open event streams (default 1000); past it, 503")
    parser.add_argument("--send-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="a client that takes longer than this to accept data it was sent "
                        "(a stalled event stream) is dropped (default 30)")
    parser.add_argument("--log-level", default="info",
                        choices=("critical", "error", "warning", "info", "debug"))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run one experiment in the terminal, without the server",
        description="Run one experiment in the terminal: print its events as they happen "
        "and the result at the end. Exit code 0 if the run succeeded.")
    run.add_argument("experiment", help="experiment id, e.g. ticket_rush")
    run.add_argument("--set", dest="settings", action="append", default=[],
                     metavar="NAME=VALUE",
                     help="set a param; VALUE is read as JSON when it parses "
                     "(--set n=10 --set lock=false --set durations=[1,2])")
    run.add_argument("--json", action="store_true", help="print events as NDJSON")
    return parser


def parse_settings(settings: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in settings:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"procscope run: --set wants NAME=VALUE, got {item!r}")
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw
    return params


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from app.terminal import run_in_terminal

        sys.exit(run_in_terminal(args.experiment, parse_settings(args.settings),
                                 as_json=args.json))
    import os

    from app.main import Settings, serve

    serve(Settings(host=args.host, port=args.port,
                   token=args.token or os.environ.get("PROCSCOPE_TOKEN") or None,
                   run_timeout=args.run_timeout, max_events=args.max_events,
                   sample_hz=args.sample_hz, sample_budget=args.sample_budget,
                   max_runs=args.max_runs,
                   max_processes=args.max_processes, max_streams=args.max_streams,
                   send_timeout=args.send_timeout, keep_runs=args.keep_runs),
          log_level=args.log_level)
