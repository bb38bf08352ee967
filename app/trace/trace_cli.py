"""`procscope trace [--open] [--json] script.py [args...]` (also `-m module`, `-c code`).

Runs in the user's terminal. Three ways to show the program (app.trace.traced_program runs it):

- a procscope server of this user runs on this machine (app.trace.program_socket.find_server):
  the program becomes a run of kind `program` there, live; its pipe's write end comes
  from the server over the local socket;
- none runs: a server of our own is started for the run (`--open` opens the browser on
  it) and kept until Ctrl-C after the program has ended;
- `--json` (or `--json-file PATH`): no server; a relay thread here writes the run's events
  as NDJSON to stderr (or the file), like `procscope run --json`. stdout stays the
  program's own.

Imports stay light at the top: the web stack is only in the server we may start.
(Past ~300 lines: the three ways share one command line, one program and its signals.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procscope import secret_token
from procscope.live.runner import set_parent_death_signal
from procscope.pipe.redaction import redact_argv, redact_text
from procscope.trace.program_socket import find_server, peer_uid_pid
from procscope.trace.traced_program import TracedProgram, exit_like

USAGE = """usage: procscope [OPTIONS] trace [--open] [--json | --json-file PATH]
                         (script.py | -m module | -c code) [args ...]

Run a Python program as `python` would (same sys.argv, __main__, cwd, stdin, exit code)
and show every process it starts, live: on the procscope server of this user if one runs
on this machine, else on a server of its own, kept until Ctrl-C after the program ends.

  --open            open the run's page in the browser
  --json            no server: the run's events as NDJSON on stderr
  --json-file PATH  no server: the run's events as NDJSON in PATH
  OPTIONS           (before `trace`) are given to the server of its own, e.g. --port
"""


class UsageError(Exception):
    pass


@dataclass
class TraceArgs:
    mode: str  # script | module | code
    target: str
    args: list[str] = field(default_factory=list)
    open_browser: bool = False
    json_file: str | None = None  # "-": stderr

    def python_argv(self) -> list[str]:
        flag = {"script": [], "module": ["-m"], "code": ["-c"]}[self.mode]
        return [sys.executable, *flag, self.target, *self.args]

    def command(self) -> str:
        shown = {"script": [], "module": ["-m"], "code": ["-c"]}[self.mode]
        return shlex.join(["python", *shown, self.target, *self.args])


def parse(argv: list[str]) -> TraceArgs:
    """Options up to the program, as `python` reads its own: the rest is the program's."""
    open_browser = False
    json_file = None
    at = 0
    while at < len(argv):
        arg = argv[at]
        if arg in ("-h", "--help"):
            raise UsageError("")
        if arg == "--open":
            open_browser = True
        elif arg == "--json":
            json_file = "-"
        elif arg == "--json-file" or arg.startswith("--json-file="):
            if "=" in arg:
                json_file = arg.split("=", 1)[1]
            else:
                at += 1
                if at == len(argv):
                    raise UsageError("--json-file needs a PATH")
                json_file = argv[at]
        elif arg in ("-m", "-c"):
            if at + 1 == len(argv):
                raise UsageError(f"{arg} needs an argument")
            mode = "module" if arg == "-m" else "code"
            return TraceArgs(mode, argv[at + 1], argv[at + 2:], open_browser, json_file)
        elif arg == "--":
            at += 1
            break
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg!r}")
        else:
            break
        at += 1
    if at >= len(argv):
        raise UsageError("which program? a script, -m module or -c code")
    return TraceArgs("script", argv[at], argv[at + 1:], open_browser, json_file)


def program_source(args: TraceArgs) -> tuple[str | None, str | None]:
    """The program's source as the page shows it: (file name, text), or Nones."""
    if args.mode == "code":
        return "-c", args.target
    path: str | None = args.target
    if args.mode == "module":
        import importlib.util

        path = None
        sys.path.insert(0, os.getcwd())
        try:
            spec = importlib.util.find_spec(args.target)
            if spec is not None and spec.submodule_search_locations is not None:
                spec = importlib.util.find_spec(args.target + ".__main__")
            if spec is not None and spec.origin and os.path.isfile(spec.origin):
                path = spec.origin
        except (ImportError, ValueError):
            pass
        finally:
            sys.path.pop(0)
    if path is None:
        return None, None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return path, f.read(512 * 1024)
    except OSError:
        return path, None


def main(argv: list[str], server_options: list[str], token: str | None = None) -> int:
    """`token`: the teacher's token for a server of our own (app.secret_token), if any."""
    try:
        args = parse(argv)
    except UsageError as e:
        print(USAGE + (f"\nprocscope trace: {e}" if str(e) else ""), file=sys.stderr)
        return 2 if str(e) else 0
    if args.mode == "script" and not os.path.exists(args.target):
        # As python says it (and with its exit code), without starting anything.
        print(f"{sys.executable}: can't open file {os.path.abspath(args.target)!r}: "
              "[Errno 2] No such file or directory", file=sys.stderr)
        return 2
    if args.json_file is not None:
        return exit_like(_trace_to_json(args))
    info = find_server()
    own: subprocess.Popen[bytes] | None = None
    if info is None:
        own, info = _start_own_server(server_options, token)
    try:
        code, page = _trace_on_server(args, info)
        if own is not None and code is not None:
            _keep_until_ctrl_c(own, code, page)
    finally:
        if own is not None:
            _stop(own)
    if code is None:
        return 2
    return exit_like(code)


def _say(text: str) -> None:
    print(f"procscope trace: {text}", file=sys.stderr, flush=True)


# --- on a server ------------------------------------------------------------------------

def _trace_on_server(args: TraceArgs, info: dict[str, Any]) -> tuple[int | None, str]:
    """Hand the program to the server; None if the server refused it (the reason said)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(info["socket"])
        uid, _ = peer_uid_pid(sock)
        if uid != os.getuid():
            _say(f"{info['socket']} is not this user's server")
            return None, ""
        name, source = program_source(args)
        sock.sendall(json.dumps({
            "op": "trace", "argv": args.python_argv()[1:], "cwd": os.getcwd(),
            "command": args.command(), "source": source, "source_name": name,
        }).encode() + b"\n")
        reply, fds = _recv_with_fd(sock)
        if "error" in reply or not fds:
            _say(f"the server refused the program: {reply.get('error')}")
            for fd in fds:
                os.close(fd)
            return None, ""
        _say(f"run {reply['run']}: {reply['page']}")
        if args.open_browser:
            _open_browser(reply["page"])
        program = TracedProgram(args.python_argv(), fds[0])
        try:
            program.start()
        finally:
            os.close(fds[0])  # the program's processes hold the only write ends now
        lines = sock.makefile("rb")
        try:
            sock.sendall(json.dumps({"pid": program.pid}).encode() + b"\n")
            go = bool(json.loads(lines.readline() or b"{}").get("go"))
        except (OSError, ValueError):
            go = False  # the server went away: the program runs anyway, untraced
            _say("the server did not answer: the program runs without it")
            program.go()
        else:
            program.go(go)
            if not go:
                _say("the run was cancelled before the program started")
        code = program.wait()
        program.restore_signals()
        with contextlib.suppress(OSError):
            sock.sendall(json.dumps({"exit": code}).encode() + b"\n")
        return code, reply["page"]
    except OSError as e:
        _say(f"cannot reach the server at {info.get('socket')}: {e}")
        return None, ""
    finally:
        sock.close()


def _recv_with_fd(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(sock, 65536, 1)
    buf = bytearray(data)
    while data and b"\n" not in buf:
        data = sock.recv(65536)
        buf += data
    try:
        reply = json.loads(bytes(buf).partition(b"\n")[0] or b"{}")
    except ValueError:
        reply = {"error": "garbled reply"}
    return reply, list(fds)


def _open_browser(url: str) -> None:
    # In a process of its own, its output thrown away: nothing but the program's may
    # appear on the program's stdout.
    subprocess.Popen([sys.executable, "-m", "webbrowser", "-t", url], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


# --- a server of our own ----------------------------------------------------------------

def _free_port(preferred: int = 8000) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port")


def _start_own_server(options: list[str], token: str | None
                      ) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`python -m procscope` in a session of its own (the terminal's signals are the program's),
    found through a runtime directory of its own; its output goes to a file there. The
    token goes to it through a pipe (app.secret_token), never its command line."""
    folder = tempfile.mkdtemp(prefix="procscope-trace-")  # 0700
    if not any(o == "--port" or o.startswith("--port=") for o in options):
        options = [*options, "--port", str(_free_port())]
    log_path = Path(folder) / "server.log"
    with open(log_path, "wb") as log_file, secret_token.handing_over(token) as (secret, fds):
        server = subprocess.Popen(
            [sys.executable, "-m", "procscope", "--log-level", "warning", *options],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, pass_fds=fds,
            env={**os.environ, "PROCSCOPE_RUNTIME_DIR": folder, **secret},
            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 30
    previous = os.environ.get("PROCSCOPE_RUNTIME_DIR")
    os.environ["PROCSCOPE_RUNTIME_DIR"] = folder
    try:
        while True:
            info = find_server()
            if info is not None and info.get("pid") == server.pid:
                return server, info
            if server.poll() is not None or time.monotonic() > deadline:
                _stop(server)
                raise SystemExit("procscope trace: the server did not start:\n" +
                                 log_path.read_text(errors="replace"))
            time.sleep(0.05)
    finally:
        if previous is None:
            del os.environ["PROCSCOPE_RUNTIME_DIR"]
        else:
            os.environ["PROCSCOPE_RUNTIME_DIR"] = previous


def _die_with_parent() -> None:
    """Runs in the server of our own, before exec: it goes when we go, however we go."""
    set_parent_death_signal(signal.SIGTERM)


def _keep_until_ctrl_c(server: subprocess.Popen[bytes], code: int, page: str) -> None:
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        _say(f"the program exited ({code}); its run stays on {page} until Ctrl-C")
        while not stop.is_set() and server.poll() is None:
            stop.wait(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server cancels what is left and writes its history), wait, SIGKILL."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- NDJSON, no server ------------------------------------------------------------------

def _trace_to_json(args: TraceArgs) -> int:
    """The relay runs here, in a thread; each event is one NDJSON line as it comes."""
    from procscope.pipe.events import Event, server_event
    from procscope.pipe.relay import Relay
    from procscope.pipe.reporter import Channel

    out_fd = 2 if args.json_file == "-" else os.open(
        args.json_file or "", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    eof = threading.Event()
    ended = threading.Event()

    def deliver(run_id: str, events: list[Event]) -> None:
        for event in events:
            with contextlib.suppress(OSError):
                os.write(out_fd, event.ndjson)  # one write per line: whole lines only
            if event.kind == "run.end":
                ended.set()

    relay = Relay(deliver, lambda run_id: eof.set())
    relay.start()
    read_fd, channel = Channel.open()
    t0 = time.monotonic_ns()
    relay.add("1", read_fd, t0, {
        "experiment": "program", "kind": "program", "params": {},
        "argv": redact_argv(args.python_argv()[1:]), "cwd": os.getcwd(),
        "command": redact_text(args.command()), "t0_monotonic_ns": t0,
        "t0_wall": time.time(), "cores": os.cpu_count()})
    program = TracedProgram(args.python_argv(), channel.fd)
    try:
        program.start()
    finally:
        os.close(channel.fd)
    program.go()
    code = program.wait()
    program.restore_signals()
    # The main is gone; its daemons went with it. A process that outlives it and holds
    # the pipe (an os.fork() child, say) is not waited for: we leave as python would.
    eof.wait(2.0)
    relay.inject("1", [server_event("proc.reap", {"child": program.pid, "exitcode": code,
                                                  "by": "trace"},
                                    t_ns=time.monotonic_ns(), pid=os.getpid(),
                                    proc="procscope trace")])
    relay.end("1", None, code)
    ended.wait(5.0)
    relay.stop()
    if out_fd != 2:
        os.close(out_fd)
    return code
