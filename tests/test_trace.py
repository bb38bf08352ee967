"""`procscope trace` (issue 15): real programs, traced and not, compared.

Runs in the pytest process; every program is a real `python` (plain) or a real
`python -m procscope trace` (traced) on a real server found through a private runtime
directory, the way a user's shell would start them.

- CPython's own multiprocessing tests (test/_test_multiprocessing.py, through
  tests/data/cpython_mp/mp_suite.py) for fork and spawn: the same tests pass, fail and
  skip with and without procscope.
- The tutorial's programs (tests/data/tutorial/): the same terminal output, and the run
  shows every process.
- tests/data/trace/: a program that raises, exits 3, is interrupted by Ctrl-C, leaves a
  daemon behind, never returns until cancelled: each ends as it would without procscope,
  and nothing is left running.
"""

from __future__ import annotations

import html
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import Server, group_members, read_events

DATA = Path(__file__).resolve().parent / "data"
SUITE = DATA / "cpython_mp" / "mp_suite.py"
# The subset of CPython's tests, per start method (README, "procscope trace"): processes,
# queues, locks, conditions, events, pools, managers, connections, within ~15 s a run.
SUBSET = {
    "fork": ["WithProcessesTestProcess", "WithProcessesTestQueue", "WithProcessesTestLock",
             "WithProcessesTestCondition", "WithProcessesTestEvent", "WithProcessesTestPool",
             "WithManagerTestQueue", "WithManagerTestContainers",
             "WithProcessesTestConnection", "WithProcessesTestSemaphore",
             "WithProcessesTestValue"],
    "spawn": ["WithProcessesTestQueue", "WithProcessesTestLock", "WithProcessesTestEvent",
              "WithProcessesTestPool", "WithManagerTestContainers",
              "WithProcessesTestConnection", "WithProcessesTestSemaphore"],
}
RUN_LINE = re.compile(r"procscope trace: run (\d+): ")


def _plain_env() -> dict[str, str]:
    # Block-buffered stdout, as for any program whose output goes to a pipe: with
    # PYTHONUNBUFFERED (set on some CI machines) print() writes a line and its "\n" in
    # two write()s, and concurrent processes cut each other's lines, traced or not.
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _env(runtime_dir: Path) -> dict[str, str]:
    return {**_plain_env(), "PROCSCOPE_RUNTIME_DIR": str(runtime_dir)}


def plain(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=_plain_env())


def traced(args: list[str], cwd: Path, runtime_dir: Path,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procscope", "trace", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=_env(runtime_dir))


def own_lines(stderr: str) -> tuple[str, str | None]:
    """The program's stderr without procscope's own lines, and the run id they name."""
    run_id = None
    kept = []
    for line in stderr.splitlines(keepends=True):
        match = RUN_LINE.match(line)
        if match:
            run_id = match.group(1)
        if not line.startswith("procscope trace: "):
            kept.append(line)
    return "".join(kept), run_id


def run_of(server: Server, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        events = read_events(client, run_id)
        return client.get(f"/api/runs/{run_id}").json(), events


def assert_gone(pid: int | None) -> None:
    """Nothing of the program's process group is left running (checked for 3 s)."""
    assert pid is not None
    deadline = time.monotonic() + 3
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(pid) == []


PIDS = re.compile(r"\b\d{3,}")


def lines(text: str) -> list[str]:
    """Output lines with pids as PID, in order of sorting: concurrent processes print in
    an order no run repeats (with or without procscope), each line is still whole."""
    return sorted(PIDS.sub("PID", line) for line in text.splitlines())


# --- CPython's own tests ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_cpython_multiprocessing_suite_passes_the_same(
        method: str, trace_server: Server, runtime_dir: Path,
        record_property: Any) -> None:
    args = [str(SUITE), method, *SUBSET[method]]
    started = time.monotonic()
    without = plain(args, SUITE.parent, timeout=240)
    t_plain = time.monotonic() - started
    started = time.monotonic()
    with_trace = traced(args, SUITE.parent, runtime_dir, timeout=240)
    t_traced = time.monotonic() - started
    a = json.loads(without.stdout.splitlines()[-1])
    b = json.loads(with_trace.stdout.splitlines()[-1])
    counts = {k: (len(a[k]), len(b[k])) for k in a if k != "seconds"}
    record_property("counts_without_with", counts)
    record_property("seconds_without_with", (round(t_plain, 2), round(t_traced, 2)))
    print(f"{method}: {counts}, {t_plain:.2f} s without, {t_traced:.2f} s traced")
    assert len(a["passed"]) > 40, without.stderr[-3000:]
    for outcome in ("passed", "failed", "errors", "skipped", "expected_failures"):
        assert a[outcome] == b[outcome], (outcome, with_trace.stderr[-3000:])
    assert with_trace.returncode == without.returncode
    _, run_id = own_lines(with_trace.stderr)
    assert run_id is not None
    run, events = run_of(trace_server, run_id)
    assert run["kind"] == "program" and run["status"] in ("succeeded", "failed")
    assert run["exitcode"] == without.returncode
    # Every process that reported its start also ended on the timeline.
    started_pids = {e["pid"] for e in events if e["kind"] == "proc.start"}
    exited_pids = {e["pid"] for e in events if e["kind"] == "proc.exit"}
    assert len(started_pids) > 10 and started_pids <= exited_pids
    assert_gone(run["pid"])


# --- the tutorial's programs ----------------------------------------------------------------

TUTORIAL = {  # program: processes it starts besides the main
    "process_function.py": 1,
    "process_subclass.py": 1,
    "joinable_queue.py": 4,
    "pool_apply.py": 4,
    "lock_work.py": 2,
}


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]
                  ) -> subprocess.CompletedProcess[str]:
    """Run with stdout on a pseudo-terminal, as in the tutorial: line-buffered, so every
    line of every process appears when printed (on a pipe, a pool worker's lines live or
    die with its buffer when the pool is torn down at exit, a race with or without us)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    _, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(args, proc.returncode,
                                       out.decode().replace("\r\n", "\n"), err.decode())


@pytest.mark.parametrize("name", sorted(TUTORIAL))
def test_tutorial_program_same_output_every_process_shown(
        name: str, trace_server: Server, runtime_dir: Path) -> None:
    folder = DATA / "tutorial"
    without = on_a_terminal([sys.executable, name], folder, _plain_env())
    with_trace = on_a_terminal([sys.executable, "-m", "procscope", "trace", name], folder,
                               _env(runtime_dir))
    assert with_trace.returncode == without.returncode == 0
    assert lines(with_trace.stdout) == lines(without.stdout) != []
    stderr, run_id = own_lines(with_trace.stderr)
    assert stderr == without.stderr
    assert run_id is not None
    run, events = run_of(trace_server, run_id)
    starts = [e for e in events if e["kind"] == "proc.start"]
    assert [e["data"]["role"] for e in starts].count("main") == 1
    assert len(starts) == 1 + TUTORIAL[name], [e["proc"] for e in starts]
    assert {e["pid"] for e in starts} <= {e["pid"] for e in events if e["kind"] == "proc.exit"}
    # The prints are events too, the same lines as on the terminal.
    printed = [e["data"]["text"] for e in events if e["kind"] == "print"]
    assert lines("\n".join(printed)) == lines(without.stdout)
    assert run["program"]["source"] == (folder / name).read_text()
    assert run["program"]["argv"] == [name]
    # The run's page shows the program's source beside the timeline (escaped, as text).
    with httpx.Client(base_url=trace_server.url, timeout=30) as client:
        page = client.get(f"/runs/{run_id}").text
    shown = html.unescape(page.split('data-testid="program-source"', 1)[1].split("</pre>")[0])
    assert (folder / name).read_text().strip() in shown
    assert_gone(run["pid"])


# --- ending as it would -------------------------------------------------------------------

@pytest.mark.parametrize("name, code", [("raises.py", 1), ("exit3.py", 3),
                                        ("daemon_left.py", 0)])
def test_program_ends_as_it_would(name: str, code: int, trace_server: Server,
                                  runtime_dir: Path) -> None:
    folder = DATA / "trace"
    started = time.monotonic()
    without = plain([name], folder)
    t_plain = time.monotonic() - started
    started = time.monotonic()
    with_trace = traced([name], folder, runtime_dir)
    t_traced = time.monotonic() - started
    assert without.returncode == with_trace.returncode == code
    assert with_trace.stdout == without.stdout
    stderr, run_id = own_lines(with_trace.stderr)
    assert stderr == without.stderr  # the same traceback, line for line
    assert t_traced < t_plain + 3  # no hang at exit
    assert run_id is not None
    run, events = run_of(trace_server, run_id)
    assert run["exitcode"] == code
    assert run["status"] == ("succeeded" if code == 0 else "failed")
    assert_gone(run["pid"])


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None
           ) -> subprocess.Popen[str]:
    # A session of its own, as a shell's job: Ctrl-C is SIGINT to its process group.
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env,
                            start_new_session=True)


def _read_until(proc: subprocess.Popen[str], wanted: set[str]) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    while not wanted <= set(seen):
        line = proc.stdout.readline()
        assert line, f"ended before {wanted - set(seen)}"
        seen.append(line.rstrip("\n"))
    return seen


def stacks_of(pid: int) -> str:
    """py-spy's dump of every Python stack in `pid` and its descendants (for a hang)."""
    out = []
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return "(gone)"
    for p in procs:
        dump = subprocess.run(["py-spy", "dump", "--pid", str(p.pid)], capture_output=True,
                              text=True, timeout=30, check=False)
        out.append(f"--- pid {p.pid}:\n{dump.stdout}{dump.stderr}")
    return "\n".join(out)


def where_interrupted(traceback: str) -> list[str]:
    """A traceback without the program's line numbers and source lines, and without a frame
    of procscope's print capture (a Ctrl-C can land inside the print it stands in for)."""
    app = str(Path(__file__).resolve().parent.parent / "app")
    return [re.sub(r", line \d+,", ", line N,", line) for line in traceback.splitlines()
            if not line.startswith("    ") and not line.startswith(f'  File "{app}')]


def test_ctrl_c_reaches_the_program_first(trace_server: Server, runtime_dir: Path) -> None:
    folder = DATA / "trace"
    results = []
    for args, env in (([sys.executable, "interrupted.py"], _plain_env()),
                      ([sys.executable, "-m", "procscope", "trace", "interrupted.py"],
                       _env(runtime_dir))):
        proc = _start(args, folder, env)
        try:
            before = _read_until(proc, {"ready", "child ready"})
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired as e:  # seen once in CI: say where it hangs
                pytest.fail(f"still running 30 s after Ctrl-C: {args}\n{e.stderr!r}\n"
                            f"{stacks_of(proc.pid)}")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()  # reaps it and closes its pipes
        results.append((proc.returncode, sorted(before + out.splitlines()), err))
    (code_a, out_a, err_a), (code_b, out_b, err_b) = results
    assert code_a == code_b == -signal.SIGINT  # python dies of an unhandled Ctrl-C
    assert out_a == out_b and "child interrupted" in out_a
    own, run_id = own_lines(err_b)
    # The same traceback, but the Ctrl-C may land in print("ready") or in the sleep after
    # it (a loaded machine): which line of the program is where each run happened to be.
    assert where_interrupted(own) == where_interrupted(err_a)
    assert err_a.rstrip().endswith("KeyboardInterrupt")
    assert run_id is not None
    run, _ = run_of(trace_server, run_id)
    assert run["exitcode"] == -signal.SIGINT
    assert_gone(run["pid"])


def test_cancel_from_the_page_ends_a_program_that_never_returns(
        trace_server: Server, runtime_dir: Path) -> None:
    proc = _start([sys.executable, "-m", "procscope", "trace", "forever.py"], DATA / "trace",
                  _env(runtime_dir))
    try:
        assert proc.stderr is not None
        match = RUN_LINE.match(proc.stderr.readline())
        assert match, "no run line"
        # Both children are running (each has reported its start) before the cancel.
        _read_until(proc, {"ready", "spinning 0", "spinning 1"})
        with httpx.Client(base_url=trace_server.url, timeout=30) as client:
            run = client.delete(f"/api/runs/{match.group(1)}").json()
        assert run["status"] == "cancelled"
        proc.communicate(timeout=30)
        # The server SIGTERMed the program's group; python died of it, and so did trace.
        assert proc.returncode == -signal.SIGTERM
        run, events = run_of(trace_server, match.group(1))
        assert run["exitcode"] == -signal.SIGTERM
        assert len([e for e in events if e["kind"] == "proc.start"]) == 3
        assert_gone(run["pid"])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_json_without_a_server(tmp_path: Path) -> None:
    """--json-file: the events as NDJSON, no server (an empty runtime directory)."""
    empty = tmp_path / "runtime"
    empty.mkdir(mode=0o700)
    out = tmp_path / "events.ndjson"
    result = traced(["--json-file", str(out), "exit3.py"], DATA / "trace", empty)
    assert result.returncode == 3
    assert result.stdout == "child exit code 5\n"
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events[0]["kind"] == "run.start" and events[-1]["kind"] == "run.end"
    assert events[-1]["data"]["exitcode"] == 3
    exits = {e["pid"]: e["data"]["exitcode"] for e in events if e["kind"] == "proc.exit"}
    assert sorted(exits.values()) == [3, 5]


def test_a_program_with_packages_named_app_and_experiments_is_its_own(tmp_path: Path) -> None:
    """Regression for issue 23: procscope was installed as the top-level packages `app`
    and `experiments`, so a program with its own `app` imported procscope's (or procscope
    the program's). Installed as `procscope` alone, the program's packages are its own."""
    for package in ("app", "experiments"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"WHO = 'the program: {package}'\n")
    (tmp_path / "main.py").write_text(
        "import multiprocessing as mp\nimport app, experiments\n"
        "def show():\n    print(app.WHO, '/', experiments.WHO)\n"
        "if __name__ == '__main__':\n"
        "    show()\n    p = mp.Process(target=show)\n    p.start(); p.join()\n")
    empty = tmp_path / "runtime"
    empty.mkdir(mode=0o700)
    out = tmp_path / "events.ndjson"
    result = traced(["--json-file", str(out), "main.py"], tmp_path, empty)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the program: app / the program: experiments\n" * 2
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len([e for e in events if e["kind"] == "proc.start"]) == 2


def test_the_web_api_never_starts_a_program(trace_server: Server) -> None:
    with httpx.Client(base_url=trace_server.url, timeout=30) as client:
        response = client.post("/api/runs", json={"experiment": "program",
                                                  "params": {"argv": ["x.py"]}})
    assert response.status_code == 422


def test_without_a_server_it_starts_its_own_and_keeps_it_until_ctrl_c(
        tmp_path: Path) -> None:
    """No server of this user: trace starts one for the run, says where, and keeps it (the
    run on it) until Ctrl-C after the program ended; then it and the server are gone."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**_plain_env(), "PROCSCOPE_RUNTIME_DIR": str(runtime),
           "XDG_DATA_HOME": str(tmp_path / "data")}  # its history, not the user's
    proc = _start([sys.executable, "-m", "procscope", "trace", "-c", "print('hello from main')"],
                  tmp_path, env)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        page = None
        for _ in range(20):  # a few lines of its own, bounded
            line = proc.stderr.readline()
            assert line, "trace ended before it said where its run stays"
            match = re.search(r"its run stays on (http://127\.0\.0\.1:\d+/runs/(\d+))", line)
            if match:
                page, run_id = match.group(1), match.group(2)
                break
        assert page is not None
        servers = psutil.Process(proc.pid).children()
        assert len(servers) == 1
        base = page.split("/runs/")[0]
        with httpx.Client(base_url=base, timeout=30) as client:
            run = client.get(f"/api/runs/{run_id}").json()
            events = read_events(client, run_id)
        assert run["kind"] == "program" and run["status"] == "succeeded"
        assert "hello from main" in run["program"]["command"]
        assert [e["data"]["text"] for e in events if e["kind"] == "print"] == ["hello from main"]
        assert proc.stdout.readline() == "hello from main\n"  # the program's stdout, as is
        proc.send_signal(signal.SIGINT)  # the Ctrl-C it waits for
        assert proc.wait(30) == 0  # the program's own exit code
        psutil.wait_procs(servers, timeout=15)
        assert not any(s.is_running() and s.status() != psutil.STATUS_ZOMBIE for s in servers)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def test_a_forkserver_program_shows_every_process(trace_server: Server,
                                                  runtime_dir: Path) -> None:
    """Under the forkserver start method too: the same output, and the children (forked by
    the fork server, not by the main) report themselves on the run."""
    folder = DATA / "trace"
    without = plain(["forkserver_children.py"], folder)
    with_trace = traced(["forkserver_children.py"], folder, runtime_dir)
    assert with_trace.returncode == without.returncode == 0
    assert sorted(with_trace.stdout.splitlines()) == sorted(without.stdout.splitlines())
    assert "all joined [0, 0]" in with_trace.stdout
    _, run_id = own_lines(with_trace.stderr)
    assert run_id is not None
    run, events = run_of(trace_server, run_id)
    starts = {e["pid"]: e["data"]["role"] for e in events if e["kind"] == "proc.start"}
    assert list(starts.values()).count("main") == 1
    assert list(starts.values()).count("worker") == 2, starts
    printed = sorted(e["data"]["text"] for e in events if e["kind"] == "print")
    assert printed == sorted(without.stdout.splitlines())
    assert_gone(run["pid"])


# --- the program's page ---------------------------------------------------------------------

def test_a_programs_page_shows_the_program_not_a_lesson(trace_server: Server,
                                                        runtime_dir: Path, browser: Any) -> None:
    """Issue 23: a traced program's page showed the default lesson (join) with ▶ Run, Run
    both and its question, drew `procscope trace` itself as a lane "pid N", and said "the
    experiment's main process exited with code 3" with an empty Traceback box."""
    from browser import PageErrors, screenshot

    folder = DATA / "trace"
    exit3 = own_lines(traced(["exit3.py", "a", "b"], folder, runtime_dir).stderr)[1]
    raises = own_lines(traced(["raises.py"], folder, runtime_dir).stderr)[1]
    assert exit3 is not None and raises is not None
    run, _ = run_of(trace_server, exit3)
    run_of(trace_server, raises)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    page = ctx.new_page()
    errors = PageErrors()
    errors.watch(page)
    try:
        page.goto(f"{trace_server.url}/runs/{exit3}")
        page.wait_for_function("procscope.panels.length === 1 && procscope.panels[0].resultReady")
        facts = page.locator("[data-testid=program]")
        assert facts.locator("h1").inner_text() == "exit3.py"
        sidebar = page.locator(".sidebar").inner_text()
        for fact in ("python exit3.py a b", "['exit3.py', 'a', 'b']", str(folder)):
            assert fact in sidebar, (fact, sidebar)
        assert page.locator("[data-testid=program-exitcode]").inner_text() == "3"
        assert re.fullmatch(r"\d+\.\d{3} s",
                            page.locator("[data-testid=program-duration]").inner_text())
        assert page.locator("[data-testid=experiment-select]").input_value() == ""
        for lesson_control in ("start-run", "start-compare", "open-question", "lesson"):
            assert page.locator(f"[data-testid={lesson_control}]").count() == 0, lesson_control
        assert page.locator("[data-proxy=start-run]:visible").count() == 0
        # Its processes only: the main and its child (procscope trace is not the program's).
        lanes = page.evaluate("procscope.panels[0].model.rows().map(l => l.name)")
        assert lanes == ["MainProcess", "Process-1"], lanes
        assert page.locator("[data-testid=result] .outcome").inner_text() == \
            "The program exited with code 3."
        assert run["error"] == "the program exited with code 3"
        assert page.locator("[data-testid=traceback]").count() == 0
        assert page.locator(".run-name").inner_text() == f"#{exit3} exit3.py"
        screenshot(page, "trace-program-exit3-1280x720")
        # The run list's other program: the sidebar follows, and its own traceback (from its
        # stderr) is open, as python printed it.
        page.locator(f"#run-list a[data-run='{raises}']").click()
        page.wait_for_selector(f"[data-program-run='{raises}']")
        page.wait_for_function("procscope.panels[0]?.resultReady && "
                               f"procscope.panels[0].run.id === '{raises}'")
        traceback = page.locator("[data-testid=traceback]")
        assert traceback.evaluate("d => d.open") is True
        assert traceback.locator("pre").inner_text().splitlines()[-1] == \
            "ValueError: the program's own error"
        assert page.locator("[data-testid=program-exitcode]").inner_text() == "1"
        assert errors.messages == []
    finally:
        ctx.close()
