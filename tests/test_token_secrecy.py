"""A token the teacher gives appears nowhere (issue 23, item 1).

The bug: `procscope --token SECRET`, the teacher runs *Zombies and orphans* with
mode=orphan; the orphan's new parent is the server, the lesson reads its
/proc/<pid>/cmdline, and `--token SECRET` was on every student's page, in the run's
result, its events, the history and the exports (and in `ps` for every user).

Runs in the pytest process, against real servers (`--token`, `--token-file`,
`$PROCSCOPE_TOKEN`), a real orphan lesson, real `procscope trace` programs that print the
command line and environment of their parent and of the server, and a real redis-server
for `--replicas`. A random token per test; neither it nor its first 8 characters may be
found in any of the places listed in `look_everywhere`.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import psutil
import pytest
from conftest import ROOT, Server, free_port, read_until
from redis_server import RedisServer, redis_server

from procscope.experiments.measure import command_of
from procscope.pipe.redaction import redact_argv, redact_text
from procscope.settings import Settings

__all__ = ["redis_server"]  # the fixture, imported for pytest

# Prints what /proc says of its parent and of the pids it is given (the server): the
# command line on one line, the environment a variable a line (a print event holds at
# most PIPE_BUF bytes). Then waits for a line on stdin, so that the test can look at
# every process while the program lives.
SHOW_PARENTS = """\
import os, sys

def show(pid):
    try:
        cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
        environ = open("/proc/%d/environ" % pid, "rb").read()
    except OSError as e:
        print(pid, "unreadable:", e)
        return
    print(pid, "cmdline:", cmdline.replace(b"\\0", b" ").decode(errors="replace"))
    for variable in environ.split(b"\\0"):
        print(pid, "environ:", variable.decode(errors="replace"))

show(os.getppid())
for pid in sys.argv[1:]:
    show(int(pid))
print("ready", flush=True)
sys.stdin.readline()
print("done")
"""
RUN_LINE = re.compile(r"procscope trace: run (\d+): (http://\S+)/runs/")


def new_token() -> str:
    """Random, and never starting with '-' (argparse would read it as an option)."""
    return "k" + secrets.token_urlsafe(24)


def where(token: str, places: dict[str, bytes]) -> list[str]:
    """The places that hold the token or its first 8 characters."""
    needles = (token.encode(), token[:8].encode())
    return [name for name, blob in places.items() if any(n in blob for n in needles)]


def proc_files(root: int, moment: str) -> dict[str, bytes]:
    """/proc/PID/cmdline and environ of `root` and every process below it, right now."""
    found: dict[str, bytes] = {}
    try:
        tree = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for process in tree:
        for name in ("cmdline", "environ"):
            try:
                found[f"{moment}: /proc/{process.pid}/{name} "
                      f"({' '.join(process.cmdline())[:60]})"] = \
                    Path(f"/proc/{process.pid}/{name}").read_bytes()
            except (OSError, psutil.NoSuchProcess):
                continue
    return found


def run_places(client: httpx.Client, run_id: str, headers: dict[str, str]) -> dict[str, bytes]:
    """Everything the server says of one run: its JSON, its streams, its exports, its page."""
    places = {}
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/events",
                 f"/api/runs/{run_id}/events.ndjson", f"/api/runs/{run_id}/trace.json",
                 f"/api/runs/{run_id}/replay.html", f"/runs/{run_id}", "/", "/api/runs"):
        response = client.get(path, headers=headers, timeout=60)
        assert response.status_code == 200, (path, response.text[:300])
        places[f"GET {path}"] = response.content
    return places


def history_files(db: Path) -> dict[str, bytes]:
    """The SQLite history's bytes (and its WAL, if one is left)."""
    return {str(path): path.read_bytes()
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-journal")) if path.exists()}


def trace_program(tmp_path: Path, runtime: Path, *args: str,
                  server_options: tuple[str, ...] = (), env: dict[str, str] | None = None
                  ) -> subprocess.Popen[str]:
    """`procscope [OPTIONS] trace show_parents.py ARGS`, a session of its own (a shell's job)."""
    program = tmp_path / "show_parents.py"
    program.write_text(SHOW_PARENTS)
    return subprocess.Popen(
        [sys.executable, "-m", "procscope", *server_options, "trace", str(program), *args],
        cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
        env={**os.environ, "PROCSCOPE_RUNTIME_DIR": str(runtime), **(env or {})})


def read_line(stream: IO[str], pattern: str, limit: int = 5000
              ) -> tuple[list[str], re.Match[str]]:
    """Lines of `stream` up to the first that matches `pattern`; (the lines, the match)."""
    seen: list[str] = []
    for _ in range(limit):
        line = stream.readline()
        assert line, f"ended before {pattern!r}:\n{''.join(seen)}"
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return seen, match
    raise AssertionError(f"no {pattern!r} in {limit} lines")


def stop_job(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C to the job, then its output; SIGKILL if it will not go."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    """A runtime directory of the test's own: `procscope trace` finds only its server."""
    folder = tmp_path / "runtime"
    folder.mkdir(mode=0o700)
    return folder


def start_server(how: str, token: str, tmp_path: Path, runtime: Path) -> Server:
    db = tmp_path / "history.sqlite3"
    env = {"PROCSCOPE_RUNTIME_DIR": str(runtime)}
    if how == "--token":
        return Server("--token", token, "--db", str(db), env=env)
    if how == "--token-file":
        path = tmp_path / "token"
        path.write_text(token + "\n")
        path.chmod(0o600)
        return Server("--token-file", str(path), "--db", str(db), token=token, env=env)
    return Server("--db", str(db), token=token, env={**env, "PROCSCOPE_TOKEN": token})


@pytest.mark.parametrize("how", ["--token", "--token-file", "PROCSCOPE_TOKEN"])
def test_the_token_is_nowhere_an_orphan_or_a_program_can_see(
        how: str, tmp_path: Path, runtime: Path) -> None:
    token = new_token()
    server = start_server(how, token, tmp_path, runtime)
    places: dict[str, bytes] = {}
    try:
        places.update(proc_files(server.proc.pid, "started"))  # `ps`, before any run
        with httpx.Client(base_url=server.url, timeout=30) as client:
            response = client.post("/api/runs", headers=server.headers, json={
                "experiment": "zombie_orphan",
                "params": {"mode": "orphan", "hold": 20, "time_scale": 0.1,
                           "start_method": "spawn"}})
            assert response.status_code == 201, response.text
            orphan_run = response.json()["id"]
            # The orphan has just told who adopted it, and lives on under the server.
            events = read_until(client, orphan_run, lambda e: e["kind"] == "proc.reparented",
                                headers=server.headers)
            assert events[-1]["kind"] == "proc.reparented"
            places.update(proc_files(server.proc.pid, "the orphan adopted"))

            program = trace_program(tmp_path, runtime, str(server.proc.pid))
            try:
                assert program.stdin and program.stdout and program.stderr
                _, match = read_line(program.stderr, RUN_LINE.pattern)
                program_run = match.group(1)
                read_line(program.stdout, r"^ready$")
                places.update(proc_files(server.proc.pid, "a program traced"))
                places.update(proc_files(program.pid, "a program traced"))
                program.stdin.write("\n")
                program.stdin.flush()
                out, err = program.communicate(timeout=60)
            finally:
                if program.poll() is None:
                    os.killpg(program.pid, signal.SIGKILL)
                    program.communicate()
            assert program.returncode == 0, err
            places["the traced program's stdout and stderr"] = (out + err).encode()

            for run_id in (orphan_run, program_run):
                places.update(run_places(client, run_id, server.headers))
            viewer = server.links()["students"]
            places.update({f"{k} (students)": v for k, v in run_places(
                client, orphan_run, {"Authorization": f"Bearer {viewer}"}).items()})
            orphan = client.get(f"/api/runs/{orphan_run}", headers=server.headers).json()
            shown = client.get(f"/api/runs/{program_run}/events.ndjson",
                               headers=server.headers).text
    finally:
        places["the server's output"] = server.stop().encode()
    places.update(history_files(tmp_path / "history.sqlite3"))

    # What the lesson and the program show of the server is still there, only the token
    # is not: the test looks where the leak was.
    assert orphan["status"] == "succeeded", orphan
    assert orphan["result"]["ppid_after"] == server.proc.pid
    assert "procscope" in orphan["result"]["new_parent"]
    assert f"{server.proc.pid} cmdline:" in shown and "procscope" in shown
    assert len(places) > 20
    found = where(token, places)
    assert not found, "the token is in:\n" + "\n".join(found)


def test_a_traced_programs_own_server_gets_the_token_but_never_shows_it(
        tmp_path: Path, runtime: Path) -> None:
    """`procscope --token SECRET trace prog.py`, no server running: trace starts one of its
    own; neither trace (the program's parent), nor that server, nor the program holds it."""
    token = new_token()
    program = trace_program(tmp_path, runtime, server_options=("--token", token),
                            env={"XDG_DATA_HOME": str(tmp_path / "data")})
    places: dict[str, bytes] = {}
    out = err = ""
    try:
        assert program.stdin and program.stdout and program.stderr
        said, match = read_line(program.stderr, RUN_LINE.pattern)
        run_id, base = match.groups()
        printed, _ = read_line(program.stdout, r"^ready$")
        places.update(proc_files(program.pid, "the program running"))
        own_server = [p for p in psutil.Process(program.pid).children()
                      if p.cmdline()[1:3] == ["-m", "procscope"]]
        assert len(own_server) == 1
        log_path = Path(os.readlink(f"/proc/{own_server[0].pid}/fd/1"))
        program.stdin.write("\n")
        program.stdin.flush()
        said += read_line(program.stderr, r"its run stays on")[0]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/api/runs", headers={}).status_code == 401  # the token holds
            places.update(run_places(client, run_id, headers))
        rest, more = stop_job(program)
        out, err = "".join(printed) + rest, "".join(said) + more
    finally:
        if program.poll() is None:
            stop_job(program)
    assert program.returncode == 0, err
    places["trace's stdout and stderr"] = (out + err).encode()
    places["its server's log"] = log_path.read_bytes()
    places.update(history_files(tmp_path / "data" / "procscope" / "history.sqlite3"))
    assert "cmdline:" in out and "procscope" in out
    assert len(places) > 10
    found = where(token, places)
    assert not found, "the token is in:\n" + "\n".join(found)


def test_replicas_get_the_token_without_argv_or_environment(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """`--replicas 2`: each replica knows the token (it refuses a request without it and
    accepts one with it), and no replica's command line or environment holds it."""
    token = new_token()
    path = tmp_path / "token"
    path.write_text(token)
    path.chmod(0o600)
    port = free_port()
    while True:  # two free ports in a row
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                break
            except OSError:
                port = free_port()
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "procscope", "--replicas", "2", "--redis", redis_server.url,
         "--port", str(port), "--token-file", str(path), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    places: dict[str, bytes] = {}
    try:
        for replica in (port, port + 1):
            url = f"http://127.0.0.1:{replica}/api/runs"
            deadline = time.monotonic() + 30
            while True:
                try:
                    answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"},
                                       timeout=2)
                    break
                except httpx.HTTPError:
                    assert supervisor.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            assert answer.status_code == 200
            assert httpx.get(url, timeout=5).status_code == 401
        places.update(proc_files(supervisor.pid, "replicas serving"))
        assert len([p for p in psutil.Process(supervisor.pid).children()
                    if "procscope" in " ".join(p.cmdline())]) == 2
    finally:
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=30)
    places["the supervisor's output"] = out.encode()
    found = where(token, places)
    assert not found, "the token is in:\n" + "\n".join(found)



def test_a_program_that_prints_the_token_itself_shows_stars_on_the_page(
        tmp_path: Path, runtime: Path) -> None:
    """Defence in depth: no process of a run can read the server's token, but a program
    of the teacher's may print it anyway (here: it reads the token file). The server's
    relay makes it `*`s in every event; the program's own terminal output is its own. A
    program's own `--token` is shown `***` in its command line on the page."""
    token, its_own = new_token(), new_token()
    path = tmp_path / "token"
    path.write_text(token)
    path.chmod(0o600)
    server = Server("--token-file", str(path), token=token,
                    env={"PROCSCOPE_RUNTIME_DIR": str(runtime)})
    try:
        traced = subprocess.run(
            [sys.executable, "-m", "procscope", "trace", "-c",
             "import sys; print('the token:', open(sys.argv[1]).read())", str(path),
             "--token", its_own],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={**os.environ, "PROCSCOPE_RUNTIME_DIR": str(runtime)})
        assert traced.returncode == 0, traced.stderr
        assert traced.stdout == f"the token: {token}\n"  # as python prints it
        match = RUN_LINE.search(traced.stderr)
        assert match
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
            run = client.get(f"/api/runs/{match.group(1)}").json()
            events = client.get(f"/api/runs/{match.group(1)}/events.ndjson").text
        assert run["program"]["command"].endswith(f"{path} --token ***")
        assert run["program"]["argv"][-2:] == ["--token", "***"]
        assert f"the token: {'*' * len(token)}" in events
        assert token not in events and its_own not in events and its_own not in str(run)

        # `procscope export` takes the token from a file too.
        exported = subprocess.run(
            [sys.executable, "-m", "procscope", "export", match.group(1), "--server",
             server.url, "--token-file", str(path), "-o", "-"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout == events
    finally:
        server.stop()


@pytest.mark.parametrize(("words", "shown"), [
    (["procscope", "--token", "S3CRET", "--port", "1"],
     ["procscope", "--token", "***", "--port", "1"]),
    (["procscope", "--token=S3CRET"], ["procscope", "--token=***"]),
    (["env", "PROCSCOPE_TOKEN=S3CRET", "HOME=/root"], ["env", "PROCSCOPE_TOKEN=***", "HOME=/root"]),
    (["curl", "http://h:1/runs/2?token=S3CRET&lang=zh"], ["curl", "http://h:1/runs/2?token=***&lang=zh"]),
    (["prog", "Token=two words"], ["prog", "Token=***"]),
    (["procscope", "--token-file", "/etc/t", "--tokens", "7"],
     ["procscope", "--token-file", "/etc/t", "--tokens", "7"]),
    (["procscope", "--token"], ["procscope", "--token"]),
])
def test_redact_argv(words: list[str], shown: list[str]) -> None:
    assert redact_argv(words) == shown


@pytest.mark.parametrize(("text", "shown"), [
    ("python -m procscope --token S3CRET --port 1", "python -m procscope --token *** --port 1"),
    ("procscope --token=S3CRET", "procscope --token=***"),
    ("python prog.py --token 'a b~c' x", "python prog.py --token *** x"),
    ("PROCSCOPE_TOKEN=S3CRET HOME=/root", "PROCSCOPE_TOKEN=*** HOME=/root"),
    ("open http://h/?token=S3CRET&lang=zh now", "open http://h/?token=***&lang=zh now"),
    ("procscope --token-file /etc/t", "procscope --token-file /etc/t"),
    ("procscope --token --port 1", "procscope --token --port 1"),
    ("no secret here", "no secret here"),
])
def test_redact_text(text: str, shown: str) -> None:
    assert redact_text(text) == shown


def test_command_of_a_process_given_a_token_hides_it() -> None:
    """What a lesson shows of another process (the orphan's new parent): a real one."""
    token = new_token()
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys;print(1,flush=1);sys.stdin.read()",  # short: 120 shown
                             "--token", token, "--port", "8000"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        # Once it speaks it runs its own image: right after Popen returns, the kernel may
        # still be setting it up, and /proc/PID/cmdline reads empty (seen: '?').
        assert proc.stdout is not None and proc.stdout.readline() == b"1\n"
        shown = command_of(proc.pid)
    finally:
        proc.communicate(b"")
    assert shown.endswith("--token *** --port 8000") and token not in shown


def procscope_fails(*args: str, env: dict[str, str] | None = None) -> str:
    """`procscope ARGS`, which must refuse to start: its stderr."""
    out = subprocess.run([sys.executable, "-m", "procscope", "--port", str(free_port()),
                          "--db", ":memory:", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={**os.environ, **(env or {})})
    assert out.returncode != 0, out
    return out.stderr


def test_a_token_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(new_token())
    path.chmod(0o640)
    assert f"others may read it (mode -rw-r-----); make it yours alone: chmod 600 {path}" in \
        procscope_fails("--token-file", str(path))
    path.chmod(0o600)
    path.write_text("\n")
    assert "the file is empty" in procscope_fails("--token-file", str(path))
    assert "No such file" in procscope_fails("--token-file", str(tmp_path / "none"))
    path.write_text(new_token())
    assert "--token and --token-file: give one of them" in procscope_fails(
        "--token", new_token(), "--token-file", str(path))


def test_settings_refuse_what_no_server_can_run_with() -> None:
    with pytest.raises(ValueError, match="8 to 1024 letters"):
        Settings(token="short")
    with pytest.raises(ValueError, match="8 to 1024 letters"):
        Settings(token="has a space")
    with pytest.raises(ValueError, match="--replicas needs a --port"):
        Settings(replicas=2, port=0, redis="redis://127.0.0.1:1/0")
    assert "token" not in repr(Settings(token=new_token()))  # a repr is printed, logged
    # The command line says the same, whichever way the token came.
    assert "8 to 1024 letters" in procscope_fails("--token", "short")
    assert "8 to 1024 letters" in procscope_fails(env={"PROCSCOPE_TOKEN": "a;b"})
