"""The `procscope` command: serve the dashboard, or run one lesson in the terminal.

Runs in the user's terminal. Imports stay inside the functions: a spawned run re-imports
the main module it was started from (this one, through the console script), and it must
not pull the web stack in with it (ARCHITECTURE.md, pitfalls).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from typing import Any

from procscope import secret_token
from procscope.settings import OPTIONS, SettingRefused, Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procscope",
        description="A live dashboard of what Python's multiprocessing really does. "
        "Without a command, serve the dashboard.",
    )
    defaults = Settings()
    for name, (metavar, text) in OPTIONS.items():
        default = getattr(defaults, name)
        kind = str if default is None else type(default)
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default,
                            metavar=metavar, help=text)
        if name == "token":  # not a setting: where the token is read from (app.secret_token)
            parser.add_argument("--token-file", metavar="PATH",
                                help="read the token from this file (yours alone: chmod "
                                "600); it is in no process's command line or environment")
    parser.add_argument("--log-level", default="info",
                        choices=("critical", "error", "warning", "info", "debug"))
    parser.add_argument("--version", action="version",
                        version=f"procscope {metadata.version('procscope')}")
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
    # Parsed by app.trace.trace_cli itself (split_trace), as python parses its own command line:
    # everything after the program is the program's. Listed here for --help.
    trace = commands.add_parser(
        "trace", help="run a Python program (script.py, -m module, -c code) as python would, "
        "and watch every process it starts", add_help=False)
    trace.add_argument("program", nargs=argparse.REMAINDER,
                       help="[--open] [--json | --json-file PATH] script.py [args...]")
    _transfer_commands(commands)
    return parser


def _transfer_commands(commands: Any) -> None:
    """`export` and `import` (app.history.transfer): through a server's API, or a history file."""
    from procscope.history import run_export  # the formats' names: standard library only

    def reach(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--server", default="http://127.0.0.1:8000", metavar="URL",
                         help="the server whose API to use (default %(default)s)")
        sub.add_argument("--token", default=argparse.SUPPRESS, metavar="TOKEN",
                         help="its teacher's token (default: --token-file, else "
                         "$PROCSCOPE_TOKEN)")
        sub.add_argument("--token-file", default=argparse.SUPPRESS, metavar="PATH",
                         help="read its teacher's token from this file (yours alone)")
        sub.add_argument("--db", dest="file_db", default=None, metavar="PATH",
                         help="use this history file instead of a server")

    export = commands.add_parser(
        "export", help="write one run of the history to a file: trace, html or ndjson",
        description="Write one run to a file: a Chrome Trace Event file for Perfetto and "
        "speedscope (trace), a self-contained HTML replay (html), or its events (ndjson).")
    export.add_argument("run", help="the run's id, e.g. 3")
    export.add_argument("--format", choices=tuple(run_export.FORMATS), default="ndjson",
                        help="default %(default)s")
    export.add_argument("-o", "--output", metavar="FILE",
                        help="where to write it ('-': stdout; default "
                        "procscope-run-RUN.trace.json / .replay.html / .ndjson)")
    reach(export)
    imported = commands.add_parser(
        "import", help="bring an exported run (its NDJSON) back into the history",
        description="Bring a run exported with --format ndjson (or a run's events.ndjson) "
        "back into the history, as a new run with the same events.")
    imported.add_argument("file", help="the NDJSON file ('-': stdin)")
    imported.add_argument("--json", action="store_true", help="print the new run's JSON")
    reach(imported)


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


def command_at(argv: list[str]) -> int:
    """Where the command (run, trace, ...) is in argv: after the options; len(argv) if none."""
    at = 0
    while at < len(argv) and argv[at].startswith("-"):
        at += 1 if "=" in argv[at] or argv[at] in ("-h", "--help") else 2
    return min(at, len(argv))


def split_trace(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """(the server options, the rest) if the command is `trace`, else None."""
    at = command_at(argv)
    if at < len(argv) and argv[at] == "trace":
        return argv[:at], argv[at + 1:]
    return None


def main(argv: list[str] | None = None) -> None:
    own = argv is None  # this process's own command line: it may exec itself again
    argv = sys.argv[1:] if argv is None else argv
    # The words that are procscope's own: a traced program's `--token` is the program's.
    at = command_at(argv)
    ours = len(argv) if at == len(argv) or argv[at] in ("export", "import") else at
    argv, token = secret_token.take(argv, ours, may_reexec=own)
    traced = split_trace(argv)
    if traced is not None:
        from procscope.trace import trace_cli

        # The server options are checked as for the server itself: its own server (if
        # one is started) gets them, and the program must not run to learn they are bad.
        parser = _parser()
        _settings(parser, parser.parse_args(traced[0]), token)
        sys.exit(trace_cli.main(traced[1], traced[0], token))
    parser = _parser()
    args = parser.parse_args(argv)
    if args.token_file:
        token = secret_token.read_file(args.token_file)
    if args.command in ("export", "import"):
        from procscope.history import transfer

        args.db = args.file_db
        args.token = token
        sys.exit(transfer.main_export(args) if args.command == "export"
                 else transfer.main_import(args))
    if args.command == "run":
        from procscope.live.terminal import run_in_terminal

        sys.exit(run_in_terminal(args.experiment, parse_settings(args.settings),
                                 as_json=args.json))
    from procscope.web.main import serve

    serve(_settings(parser, args, token), log_level=args.log_level)


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace,
              token: str | None) -> Settings:
    """The server's Settings from the command line (and $PROCSCOPE_REDIS), or exit saying
    which flag is wrong."""
    chosen = {name: getattr(args, name) for name in OPTIONS}
    chosen["token"] = token
    if chosen["redis"] is None:
        chosen["redis"] = os.environ.get("PROCSCOPE_REDIS") or None
    try:
        return Settings(**chosen)
    except SettingRefused as e:
        if e.exit_code == 2:
            parser.error(str(e))
        raise SystemExit(f"procscope: {e}") from None
