"""Fixtures: a real procscope server on a free loopback port, real SSE clients, and a
check that no test leaves a process behind.

Runs in the pytest process, which makes itself a child subreaper: an orphan of any run
is then re-parented to pytest (or to the server, itself a subreaper), never to init, so
the leftover check below cannot miss it.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tools.processes import end

ROOT = Path(__file__).resolve().parent.parent
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m procscope` on a free loopback port, as a user would start it.

    `args` are extra command-line flags (a later `--log-level` overrides the quiet
    default; a `--db PATH` the history kept in memory, so that no test writes to the
    user's data directory). `token` is the admin token the readiness probe and `headers`
    use; when it is
    not given and the server prints a teacher link (a generated token), the token is read
    from that link. The output is drained by a thread as it comes (`output()`), so a
    chatty server never blocks on a full pipe. `command` starts another installation's
    server (tests/test_package.py: the wheel's, in a fresh venv) in `cwd`.
    """

    def __init__(self, *args: str, token: str | None = None,
                 env: dict[str, str] | None = None,
                 command: list[str] | None = None, cwd: Path = ROOT) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A token given with --token is never printed (app.web.main): the caller knows it.
        if token is None and "--token" in args:
            token = args[list(args).index("--token") + 1]
        self.token = token
        self._lines: list[str] = []
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "procscope"]), "--port", str(self.port),
             "--log-level", "warning", "--db", ":memory:", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=None if env is None else {**os.environ, **env})
        self._drain = threading.Thread(target=self._read_output, name="server-output",
                                       daemon=True)
        self._drain.start()
        # Until it answers or exits, however long a crowded machine makes its start: a
        # server that neither answers nor exits is the test's timeout's (pytest-timeout),
        # and is ended on the way out like one that exited.
        try:
            while True:
                if self.token is None:
                    self.token = self.links().get("teacher")
                try:
                    httpx.get(self.url + "/api/experiments", headers=self.headers,
                              timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"server did not start:\n{self.stop()}") from None
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    def output(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        return "".join(self._lines)

    def links(self) -> dict[str, str]:
        """The tokens of the printed links: {"teacher": ..., "students": ...} (or {})."""
        found = {}
        for line in list(self._lines):
            match = re.match(r"procscope: (teacher|students)\b.*\?token=([^\s…]+)", line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    @property
    def headers(self) -> dict[str, str]:
        """The admin's Authorization header, if a token is in force."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, timeout: float = 30) -> httpx.Client:
        """An HTTP client of this server (close it: `with srv.client() as c`)."""
        return httpx.Client(base_url=self.url, timeout=timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> str:
        end(self.proc, 10)
        self._drain.join(10)
        if self.proc.stdout and not self._drain.is_alive():
            self.proc.stdout.close()
        return self.output()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per page test module (tests/browser.py), closed at the module's end.

    Not one per session: while a playwright sync session is alive, its asyncio loop runs
    in the main thread, and every later test that calls asyncio.run() (the log contract,
    the history) fails with "cannot be called from a running event loop". Not one per
    test module's own fixture either: two sync sessions cannot be alive at once."""
    from browser import chromium  # playwright: imported by the page tests only

    with chromium() as b:
        yield b


@pytest.fixture
def contexts(browser: Any) -> Iterator[list[Any]]:
    """Browser contexts a test opens (tests/test_i18n.py new_page), closed at its end."""
    made: list[Any] = []
    yield made
    for ctx in made:
        ctx.close()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with Server() as srv:
        yield srv


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private runtime directory (0700): where `procscope trace` finds its server."""
    folder = tmp_path_factory.mktemp("runtime")
    folder.chmod(0o700)
    return folder


@pytest.fixture(scope="module")
def trace_server(runtime_dir: Path) -> Iterator[Server]:
    """The server a module's `procscope trace` runs find (PROCSCOPE_RUNTIME_DIR)."""
    srv = Server(env={"PROCSCOPE_RUNTIME_DIR": str(runtime_dir)})
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def selftest_server() -> Iterator[Server]:
    """A server whose catalogue also has `fails` (a lesson that raises) and `flood` (a
    load generator): PROCSCOPE_SELFTEST=1 in its environment."""
    os.environ["PROCSCOPE_SELFTEST"] = "1"
    try:
        srv = Server()
    finally:
        del os.environ["PROCSCOPE_SELFTEST"]
    with srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@dataclass
class Frame:
    id: str | None
    event: str | None
    data: str

    @property
    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.data)
        return out


def iter_sse(response: httpx.Response) -> Iterator[Frame | str]:
    """Parse an SSE body as it arrives: Frames, and the `retry:` value as a str."""
    fields: dict[str, list[str]] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield Frame(fields.get("id", [None])[-1], fields.get("event", [None])[-1],
                            "\n".join(fields["data"]))
            elif "retry" in fields:
                yield "retry:" + fields["retry"][-1]
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)


def read_events(client: httpx.Client, run_id: str, headers: dict[str, str] | None = None,
                params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every event of the run's SSE stream until it closes (after run.end)."""
    events = []
    with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers or {},
                       params=params or {}, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in iter_sse(response):
            if isinstance(frame, Frame):
                event = frame.json
                assert frame.id == str(event["seq"]) and frame.event == event["kind"]
                events.append(event)
    return events


def read_until(client: httpx.Client, run_id: str, stop: Callable[[dict[str, Any]], bool],
               headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The run's events up to the first one `stop` accepts (or to run.end); then disconnect.

    How a test waits for a moment of a run (all buyers started, a zombie seen) without
    sleeping: `stop` sees each event as it arrives.
    """
    events = []
    with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers or {},
                       timeout=60) as response:
        assert response.status_code == 200, response.read()
        for frame in iter_sse(response):
            if isinstance(frame, Frame):
                events.append(frame.json)
                if stop(events[-1]):
                    break
    return events


def kill_first_task_worker(client: httpx.Client, run_id: str) -> tuple[int | None,
                                                                        dict[str, Any]]:
    """SIGKILL the worker of the run's first `task.start`, the user's way (by the pid its
    event gave), then read on to run.end; the victim's pid and that event's data."""
    victim, data = None, {}
    with client.stream("GET", f"/api/runs/{run_id}/events.ndjson", timeout=60) as r:
        for line in r.iter_lines():
            e = json.loads(line)
            if e["kind"] == "task.start" and victim is None:
                victim, data = e["pid"], e["data"]
                os.kill(victim, signal.SIGKILL)
            if e["kind"] == "run.end":
                break
    return victim, data


def group_members(pgid: int, *, alive_only: bool = True) -> list[int]:
    """The pids in process group `pgid` (a run's: its main's pid), by the kernel's word.

    With `alive_only`, zombies (exited, not yet reaped) do not count.
    """
    found = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            if alive_only and psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                continue
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
        found.append(pid)
    return found


def alive(pids: Iterable[int]) -> list[int]:
    """Those of `pids` that still run (zombies are not running)."""
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            continue
    return left


@dataclass
class RunOutcome:
    run: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = self.run["result"]
        return out

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]

    def peak(self, start: str, end: str) -> int:
        """The most spans open at once, from their start / end events (e.g. task.start)."""
        open_now = top = 0
        for e in sorted(self.events, key=lambda e: e["t"]):
            if e["kind"] == start:
                open_now += 1
                top = max(top, open_now)
            elif e["kind"] == end:
                open_now -= 1
        return top

    def prints(self) -> list[str]:
        return [e["data"]["text"] for e in self.kinds("print")]


@pytest.fixture
def run_experiment(client: httpx.Client) -> Any:
    """Start a run, read its SSE stream to run.end, return the final run and its events."""

    def run(experiment: str, **params: Any) -> RunOutcome:
        response = client.post("/api/runs", json={"experiment": experiment, "params": params})
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        events = read_events(client, run_id)
        final = client.get(f"/api/runs/{run_id}").json()
        return RunOutcome(final, events)

    return run


def _run_processes(exclude: set[int]) -> list[psutil.Process]:
    """Processes of runs still around: descendants of pytest that run multiprocessing."""
    found = []
    for p in psutil.Process().children(recursive=True):
        if p.pid in exclude:
            continue
        try:
            cmdline = " ".join(p.cmdline())
            parent = p.parent()
            if ("resource_tracker" in cmdline and parent is not None
                    and "-m procscope" in " ".join(parent.cmdline())):
                continue  # the server's own helper for spawn, one per server, not a run's
            if p.status() == psutil.STATUS_ZOMBIE or "multiprocessing" in cmdline:
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves any process of a run behind (checked for 3 s)."""
    yield
    deadline = time.monotonic() + 3
    while True:
        left = _run_processes(exclude=set())
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if left:
        desc = []
        for p in left:
            try:
                desc.append(f"{p.pid} ppid={p.ppid()} {p.status()} {' '.join(p.cmdline())[:80]}")
                p.kill()
            except psutil.NoSuchProcess:
                pass
        pytest.fail("processes left behind:\n" + "\n".join(desc))
