"""Issue 14, items 3-4: a run's exports (trace.json, replay.html, NDJSON) and its import.

Real runs on a real server (small time_scale); the trace against a schema check of the
Trace Event Format written here, and loaded in speedscope (the npm package, installed by
.ci/run, opened from disk in Chromium); the replay opened from disk in Chromium with every
request but the file itself refused; an export imported back as the same run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import OUTPUT, PageErrors, chromium, open_offline, screenshot
from conftest import ROOT, Server, read_events

from procscope.history.trace_export import to_trace

SPEEDSCOPE = Path(os.environ.get(
    "PROCSCOPE_SPEEDSCOPE",
    ROOT / ".cache/speedscope/node_modules/speedscope/dist/release/index.html"))
CORES_PID = 1  # app.history.trace_export: the core tracks' process


# --- the Trace Event Format, as far as the two tools need it --------------------------------

PHASES = {"X", "B", "E", "i", "I", "C", "M", "b", "e", "n"}
METADATA = {"process_name": "name", "thread_name": "name", "process_sort_index": "sort_index",
            "thread_sort_index": "sort_index"}


def number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def check_trace(trace: dict[str, Any], end_us: float | None = None) -> dict[str, int]:
    """Fail unless `trace` is a well-formed Trace Event file (JSON Object Format); the
    count of each phase. `end_us`: the run's last event, in µs (ts must be µs, so the
    latest ts is that)."""
    assert isinstance(trace, dict) and isinstance(trace["traceEvents"], list)
    assert trace.get("displayTimeUnit", "ms") in ("ms", "ns")
    counts: dict[str, int] = {}
    procs: set[int] = set()
    threads: set[tuple[int, int]] = set()
    used: set[tuple[int, int]] = set()
    x_slices: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
    async_open: dict[tuple[int, str, str, str], float] = {}
    latest = 0.0
    for ev in trace["traceEvents"]:
        ph = ev.get("ph")
        assert ph in PHASES, ev
        counts[ph] = counts.get(ph, 0) + 1
        assert isinstance(ev.get("name"), str) and ev["name"], ev
        assert type(ev.get("pid")) is int and type(ev.get("tid")) is int, ev
        if ph == "M":
            assert ev["name"] in METADATA, ev
            value = ev["args"][METADATA[ev["name"]]]
            if ev["name"] == "process_name":
                assert isinstance(value, str) and value
                procs.add(ev["pid"])
            elif ev["name"] == "thread_name":
                assert isinstance(value, str) and value
                threads.add((ev["pid"], ev["tid"]))
            else:
                assert type(value) is int
            continue
        assert number(ev.get("ts")) and ev["ts"] >= 0, ev
        latest = max(latest, ev["ts"] + ev.get("dur", 0))
        if ph != "C":  # a counter belongs to its process, not to a thread
            used.add((ev["pid"], ev["tid"]))
        else:
            procs_used = ev["pid"]
            assert procs_used >= 0
        if "args" in ev:
            assert isinstance(ev["args"], dict), ev
        if ph == "X":
            assert number(ev.get("dur")) and ev["dur"] >= 0, ev
            x_slices.setdefault((ev["pid"], ev["tid"]), []).append(
                (ev["ts"], ev["ts"] + ev["dur"], ev["name"]))
        elif ph in ("i", "I"):
            assert ev.get("s", "t") in ("g", "p", "t"), ev
        elif ph == "C":
            assert ev["args"] and all(number(v) for v in ev["args"].values()), ev
        elif ph in ("b", "e", "n"):
            assert isinstance(ev.get("cat"), str) and isinstance(ev.get("id"), str | int), ev
            key = (ev["pid"], ev["cat"], str(ev["id"]), ev["name"])
            if ph == "b":
                assert key not in async_open, ev
                async_open[key] = ev["ts"]
            elif ph == "e":
                assert key in async_open and ev["ts"] >= async_open.pop(key), ev
    assert not async_open, f"async slices never ended: {list(async_open)[:5]}"
    # Every pid and (pid, tid) that carries an event is named by M events.
    assert {pid for pid, _ in used} <= procs, {pid for pid, _ in used} - procs
    assert used <= threads, used - threads
    # X slices on one track: on a core none overlap; elsewhere they nest (a slice that
    # starts inside another ends inside it), never overlap partially.
    for (pid, tid), slices in x_slices.items():
        slices.sort(key=lambda s: (s[0], -s[1]))
        stack: list[tuple[float, float, str]] = []
        for s in slices:
            while stack and stack[-1][1] <= s[0]:
                stack.pop()
            if pid == CORES_PID:
                assert not stack, f"core track {tid}: {stack[-1]} overlaps {s}"
            else:
                assert not stack or s[1] <= stack[-1][1], \
                    f"({pid}, {tid}): {stack[-1]} and {s} overlap partially"
            stack.append(s)
    if end_us is not None:
        assert abs(latest - end_us) <= 2, (latest, end_us)  # ts and dur are µs
    return counts


# --- the pure function ----------------------------------------------------------------------

def ev(seq: int, t: float, kind: str, pid: int | None, **data: Any) -> dict[str, Any]:
    extra = data.pop("_extra", {})
    return {"run": "1", "seq": seq, "t": t, "kind": kind, "pid": pid, "ppid": 1, "cpu": 0,
            "proc": data.pop("_proc", None), "data": data, **extra}


def test_trace_of_reused_pids_and_overlaps() -> None:
    """A pid the OS gave twice is two processes; a merged core stretch that covers another
    thread's, and a wait that outlives its hold, become async slices, not overlapping X."""
    events = [
        ev(1, 0.0, "run.start", None, experiment="ticket_rush", params={}, cores=2),
        ev(2, 0.1, "proc.start", 500, name="buyer-1", role="buyer", _proc="buyer-1"),
        ev(3, 0.2, "lock.wait", 500),
        ev(4, 0.3, "lock.acquire", 500),
        ev(5, 0.4, "proc.exit", 500, exitcode=0, source="self"),
        ev(6, 0.5, "proc.start", 500, name="buyer-2", role="buyer", _proc="buyer-2"),
        ev(7, 0.6, "print", 500, text="again", _proc="buyer-2"),
        ev(8, 0.7, "proc.exit", 500, exitcode=0, source="self"),
        # late, from the kernel: stretches of both lives, one covering the other
        ev(9, 0.7, "cpu.run", 500, tid=500, cpu=0, t0=0.1, t1=0.35, share=0.5),
        ev(10, 0.7, "cpu.run", 500, tid=500, cpu=0, t0=0.2, t1=0.25),
        ev(11, 0.7, "cpu.run", 500, tid=500, cpu=0, t0=0.55, t1=0.6),
        ev(12, 0.8, "task.start", 600, task=1, _extra={"tid": 601, "thread": "Thread-1"}),
        ev(13, 0.9, "run.end", None, status="succeeded", result={}, error=None, exitcode=0,
           dropped=0),
    ]
    trace = to_trace(events)
    counts = check_trace(trace, end_us=900_000)
    names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "process_name"}
    assert sorted(n for n in names.values() if "[pid 500]" in n) == \
        ["buyer-1 [pid 500]", "buyer-2 [pid 500]"]
    by_name = {n: pid for pid, n in names.items()}
    prints = [e for e in trace["traceEvents"] if e["ph"] == "i" and e["name"] == "again"]
    assert [e["pid"] for e in prints] == [by_name["buyer-2 [pid 500]"]]
    cores = [e for e in trace["traceEvents"] if e["pid"] == CORES_PID and e["ph"] in "Xb"]
    assert sorted((e["ph"], e["ts"], e["name"]) for e in cores) == [
        ("X", 100_000, "buyer-1"), ("X", 550_000, "buyer-2"), ("b", 200_000, "buyer-1")]
    # buyer-1 exited holding the lock: the hold ends with its life (still one nest)
    held = [e for e in trace["traceEvents"] if e.get("name") == "holding the lock"]
    assert held and held[0]["ph"] == "X" and held[0]["ts"] + held[0]["dur"] <= 400_000
    assert counts["C"] == 2  # the lock: a waiter, then held
    # the thread of pid 600 has a track of its own, named
    threads = {e["args"]["name"] for e in trace["traceEvents"]
               if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "Thread-1" in threads


# --- real runs --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    server = Server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(srv: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        yield c


def finished_run(http: httpx.Client, experiment: str, **params: Any) -> dict[str, Any]:
    response = http.post("/api/runs", json={"experiment": experiment, "params": params})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    read_events(http, run_id)
    run: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
    return run


@pytest.fixture(scope="module")
def rush(http: httpx.Client) -> dict[str, Any]:
    return finished_run(http, "ticket_rush", n=12, time_scale=0.1)


def ndjson_events(http: httpx.Client, run_id: str) -> tuple[bytes, list[dict[str, Any]]]:
    body = http.get(f"/api/runs/{run_id}/events.ndjson").content
    return body, [json.loads(line) for line in body.splitlines()]


@pytest.mark.parametrize("experiment,params", [
    ("ticket_rush", {"n": 12, "time_scale": 0.1}),
    ("join", {"durations": [0.1, 0.2]}),
    ("gil", {"mode": "threads", "work": 0.1}),
    ("queue_basics", {"timeout": 0.1}),
])
def test_trace_json_of_real_runs(http: httpx.Client, experiment: str,
                                 params: dict[str, Any]) -> None:
    run = finished_run(http, experiment, **params)
    response = http.get(f"/api/runs/{run['id']}/trace.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    trace = response.json()
    _, events = ndjson_events(http, run["id"])
    counts = check_trace(trace, end_us=round(events[-1]["t"] * 1e6))
    assert counts["X"] and counts["M"] and counts["i"]
    started = [e for e in events if e["kind"] == "proc.start"]
    named = [e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "process_name"]
    for e in started:  # every process of the run is a process of the trace
        assert f"{e['data']['name']} [pid {e['pid']}]" in named
    lives = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "process"
             and e["name"] != "zombie"]
    assert len(lives) == len(started)
    if any(e["kind"] == "cpu.run" for e in events):
        assert "CPU cores" in named
        assert any(e["pid"] == CORES_PID and e["ph"] == "X" for e in trace["traceEvents"])
    waits = {e["name"] for e in trace["traceEvents"] if e.get("cat") == "wait"}
    if experiment == "ticket_rush":
        assert "waiting for the lock" in waits
        counters = [e for e in trace["traceEvents"] if e["ph"] == "C"]
        assert {e["name"] for e in counters} == {"lock", "tickets sold"}
        assert max(e["args"]["waiters"] for e in counters if e["name"] == "lock") >= 1
    if experiment == "join":
        assert {"join worker-1", "join worker-2"} <= waits or any(
            w.startswith("join ") for w in waits)
    if experiment == "gil":
        threads = {e["args"]["name"] for e in trace["traceEvents"]
                   if e["ph"] == "M" and e["name"] == "thread_name"}
        assert len([t for t in threads if t not in ("MainThread", "procscope")
                    and not t.startswith("CPU ")]) >= 2
    if experiment == "queue_basics":
        assert "queue full: waiting to put" in waits
        assert any(e["ph"] == "C" and e["name"] == "queue depth" for e in trace["traceEvents"])


def test_trace_loads_in_speedscope(http: httpx.Client, rush: dict[str, Any],
                                   tmp_path: Path) -> None:
    if not SPEEDSCOPE.is_file():
        pytest.skip(f"speedscope is not installed at {SPEEDSCOPE} (.ci/run installs it: "
                    "npm install --prefix .cache/speedscope speedscope@1.25.0)")
    trace = http.get(f"/api/runs/{rush['id']}/trace.json").json()
    path = tmp_path / f"run-{rush['id']}.trace.json"
    path.write_text(json.dumps(trace))
    processes = sorted(e["args"]["name"] for e in trace["traceEvents"]
                       if e["ph"] == "M" and e["name"] == "process_name")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = PageErrors()
        errors.watch(page)
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://")
                   else r.abort())
        page.goto(SPEEDSCOPE.as_uri())
        page.wait_for_selector("input#file", state="attached")
        page.set_input_files("input#file", str(path))
        # The toolbar names the profile shown: "<process> (pid N), <thread> (tid M) (1/K)"
        page.wait_for_function("document.body.innerText.includes('(1/')", timeout=20_000)
        body = page.inner_text("body")
        assert "Something went wrong" not in body
        tracks = sum(1 for e in trace["traceEvents"]
                     if e["ph"] == "M" and e["name"] == "thread_name"
                     and any(x["ph"] == "X" and (x["pid"], x["tid"]) == (e["pid"], e["tid"])
                             for x in trace["traceEvents"]))
        assert f"(1/{tracks})" in body, body[:300]
        # Its profile list shows every process of the run, by name.
        page.get_by_text("(1/").first.click()
        page.wait_for_timeout(300)
        listed = page.inner_text("body")
        for name in processes:
            if name.startswith("buyer-") or name.startswith("main"):
                assert name in listed, (name, listed[:500])
        screenshot(page, "speedscope-trace")
        assert not [m for m in errors.messages if "WebGL" not in m], errors.messages


# --- the replay -------------------------------------------------------------------------------

NONBLANK = """(canvas) => {
  const ctx = canvas.getContext("2d");
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4 * 7) {
    seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  }
  return seen.size;
}"""


def test_replay_html_offline(http: httpx.Client, rush: dict[str, Any], tmp_path: Path) -> None:
    """Opened from disk, nothing but the file itself may load: the run is drawn, its result
    and lesson shown, and it replays."""
    response = http.get(f"/api/runs/{rush['id']}/replay.html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    path = tmp_path / "replay.html"
    path.write_bytes(response.content)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = PageErrors()
        errors.watch(page)
        requested = open_offline(page, path)
        status = page.get_by_test_id("run-status")
        page.wait_for_function(
            "document.querySelector('[data-testid=run-status]')?.dataset.status === 'succeeded'"
            " && window.procscope.panels[0].resultReady", timeout=20_000)
        assert status.text_content() == "succeeded"
        assert page.get_by_test_id("result").inner_text().startswith(rush["outcome"]["text"])
        assert "购票成功" in page.get_by_test_id("console").inner_text()
        assert page.get_by_test_id("lesson").inner_text().startswith("THE LESSON") or \
            "Lock" in page.get_by_test_id("lesson").inner_text()
        for testid in ("timeline-cores", "timeline-procs"):
            assert page.get_by_test_id(testid).evaluate(NONBLANK) > 3, testid
        lanes = page.evaluate("window.procscope.panels[0].model.lanes.length")
        assert lanes == rush["processes"]
        # Replay: from 0, the clock advances.
        page.get_by_role("button", name="▶ Replay").click()
        first = page.evaluate("window.procscope.clock.time(performance.now())")
        page.wait_for_timeout(150)
        second = page.evaluate("window.procscope.clock.time(performance.now())")
        assert 0 <= first < second, (first, second)
        # Zoom: the + button halves the window.
        span = page.evaluate("window.procscope.view.t1 - window.procscope.view.t0")
        page.locator("[data-zoom=in]").click()
        zoomed = page.evaluate("window.procscope.view.t1 - window.procscope.view.t0")
        assert zoomed == pytest.approx(span / 2, rel=0.01)
        screenshot(page, "replay-offline")
        assert requested == [path.as_uri()], requested
        assert errors.messages == []


def test_replay_size_of_a_100_process_rush(http: httpx.Client) -> None:
    """For the note: replay.html of a 100-buyer ticket rush (printed, and in test-output/)."""
    run = finished_run(http, "ticket_rush", n=100, time_scale=0.1)
    html = http.get(f"/api/runs/{run['id']}/replay.html").content
    ndjson = http.get(f"/api/runs/{run['id']}/events.ndjson").content
    line = (f"replay.html, ticket_rush n=100 lock on time_scale 0.1: {len(html):,} bytes "
            f"({run['events']:,} events; their NDJSON {len(ndjson):,} bytes)")
    print(line)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "replay-size.txt").write_text(line + "\n")
    assert len(html) > len(ndjson)


# --- import -----------------------------------------------------------------------------------

def without_run(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "run"} for e in events]


def test_import_gives_back_the_same_run(http: httpx.Client, rush: dict[str, Any]) -> None:
    body, events = ndjson_events(http, rush["id"])
    response = http.post("/api/runs/import", content=body,
                         headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["id"] != rush["id"] and response.headers["location"] == f"/api/runs/{run['id']}"
    for field in ("experiment", "params", "status", "result", "error", "outcome", "pid",
                  "exitcode", "events", "processes", "dropped"):
        assert run[field] == rush[field], field
    # Its times are those its events say: run.start's instant, and run.end's t after it
    # (the server's record of them, a few ms off, is not in the export).
    for field in ("started_at", "ended_at"):
        ours, theirs = (datetime.fromisoformat(r[field]) for r in (run, rush))
        assert abs((ours - theirs).total_seconds()) < 0.2, field
    again, imported = ndjson_events(http, run["id"])
    assert without_run(imported) == without_run(events)
    assert {e["run"] for e in imported} == {run["id"]}
    # the same bytes, but for the id
    old, new = f'{{"run":"{rush["id"]}",'.encode(), f'{{"run":"{run["id"]}",'.encode()
    assert again == b"\n".join(line.replace(old, new, 1) for line in body.split(b"\n"))
    assert http.get(f"/api/runs/{run['id']}").json() == run
    sse = read_events(http, run["id"])
    assert without_run(sse) == without_run(events)
    # JSON: an array of the events is taken too
    response = http.post("/api/runs/import", json=events)
    assert response.status_code == 201, response.text
    assert without_run(ndjson_events(http, response.json()["id"])[1]) == without_run(events)


def test_import_refuses_what_is_not_an_export(http: httpx.Client, rush: dict[str, Any]) -> None:
    body, events = ndjson_events(http, rush["id"])
    lines = body.splitlines()

    def post(content: bytes, kind: str = "application/x-ndjson") -> httpx.Response:
        return http.post("/api/runs/import", content=content, headers={"content-type": kind})

    cases = {
        b"\n".join(lines[:3] + lines[4:]): "seq",
        b"\n".join(lines[1:]): "run.start",
        b"\n".join(lines[:-1]): "not run.end",
        b"": "no events",
        b"not json": "not JSON",
        b"\n".join([lines[0].replace(b'"ticket_rush"', b'"no_such_lesson"', 1), *lines[1:]]):
            "experiment",
    }
    for content, said in cases.items():
        response = post(content)
        assert response.status_code == 422, (said, response.text)
        assert said in response.json()["detail"], (said, response.json())
    assert post(body, "text/plain").status_code == 415
    runs = len(http.get("/api/runs").json())
    # past the cap: a clear 413 before the body is read (only the headers are sent)
    with socket.create_connection(("127.0.0.1", int(http.base_url.port or 0))) as s:
        s.sendall(b"POST /api/runs/import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/x-ndjson\r\nContent-Length: 70000000\r\n\r\n")
        s.settimeout(10)
        answer = b""
        while b"MiB" not in answer and (chunk := s.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"over 64 MiB" in answer
    assert len(http.get("/api/runs").json()) == runs  # nothing was made of any of these


def test_import_is_for_token_holders(rush: dict[str, Any], http: httpx.Client) -> None:
    body, _ = ndjson_events(http, rush["id"])
    guarded = Server("--token", "teacher-token-for-import")
    try:
        viewer = guarded.links()["students"]
        url = guarded.url + "/api/runs/import"
        kind = {"content-type": "application/x-ndjson"}
        assert httpx.post(url, content=body, headers=kind).status_code == 401
        assert httpx.post(url, content=body, headers={
            **kind, "Authorization": f"Bearer {viewer}"}).status_code == 403
        answer = httpx.post(url, content=body, headers={**kind, **guarded.headers})
        assert answer.status_code == 201, answer.text
        # The page's upload control: the teacher's page has it, the students' has not.
        teacher = httpx.get(guarded.url + "/", headers=guarded.headers).text
        student = httpx.get(guarded.url + "/", headers={
            "Authorization": f"Bearer {viewer}"}).text
        assert 'data-testid="import-run"' in teacher
        assert 'data-testid="import-run"' not in student
    finally:
        guarded.stop()


def test_cli_export_and_import(srv: Server, http: httpx.Client, rush: dict[str, Any],
                               tmp_path: Path) -> None:
    """`procscope export` in each format through the API, `procscope import` back; and the
    same through a history file (--db) with no server."""
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "procscope", *args], cwd=ROOT, text=True,
                              capture_output=True, timeout=60)

    for fmt, suffix in (("trace", ".trace.json"), ("html", ".replay.html"),
                        ("ndjson", ".ndjson")):
        out = tmp_path / f"run{suffix}"
        done = cli("export", rush["id"], "--format", fmt, "--server", srv.url, "-o", str(out))
        assert done.returncode == 0, done.stderr
        path = f"/api/runs/{rush['id']}/" + {"trace": "trace.json", "html": "replay.html",
                                               "ndjson": "events.ndjson"}[fmt]
        if fmt == "trace":
            assert json.loads(out.read_bytes()) == http.get(path).json()
        else:
            assert out.read_bytes() == http.get(path).content
    done = cli("import", str(tmp_path / "run.ndjson"), "--server", srv.url, "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == rush["status"] and run["result"] == rush["result"]
    missing = cli("export", "9999", "--server", srv.url)
    assert missing.returncode == 1 and "404" in missing.stderr
    # A history file, no server: import into it, export from it.
    db = tmp_path / "history.sqlite3"
    done = cli("import", str(tmp_path / "run.ndjson"), "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    into = json.loads(done.stdout)
    out = tmp_path / "again.ndjson"
    done = cli("export", into["id"], "--db", str(db), "-o", str(out))
    assert done.returncode == 0, done.stderr
    original = (tmp_path / "run.ndjson").read_bytes()
    old, new = f'{{"run":"{rush["id"]}",'.encode(), f'{{"run":"{into["id"]}",'.encode()
    assert out.read_bytes() == b"\n".join(
        line.replace(old, new, 1) for line in original.split(b"\n"))
    bad = cli("import", str(tmp_path / "run.trace.json"), "--db", str(db))
    assert bad.returncode == 1 and "not a run's export" in bad.stderr
    # and a server started on that file lists the run as it was written
    on_file = Server("--db", str(db))
    try:
        listed = httpx.get(on_file.url + f"/api/runs/{into['id']}").json()
        assert listed["status"] == rush["status"] and listed["events"] == rush["events"]
    finally:
        on_file.stop()


def test_page_downloads_and_imports(srv: Server, http: httpx.Client, rush: dict[str, Any],
                                    tmp_path: Path) -> None:
    """The run page's Download menu names the run's three exports; Import a run… takes an
    events.ndjson and opens the new run."""
    body, _ = ndjson_events(http, rush["id"])
    path = tmp_path / "rush.ndjson"
    path.write_bytes(body)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = PageErrors()
        errors.watch(page)
        page.goto(f"{srv.url}/runs/{rush['id']}")
        menu = page.get_by_test_id("download-menu")
        menu.locator("summary").click()
        hrefs = menu.locator("a").evaluate_all("links => links.map((a) => a.getAttribute('href'))")
        assert hrefs == [f"/api/runs/{rush['id']}/{name}"
                         for name in ("replay.html", "trace.json", "events.ndjson")]
        before = {r["id"] for r in http.get("/api/runs").json()}
        page.get_by_test_id("import-run").set_input_files(str(path))
        page.wait_for_url(lambda url: "/runs/" in url and not url.endswith(f"/runs/{rush['id']}"),
                          timeout=20_000)
        new_id = page.url.rsplit("/", 1)[1]
        assert new_id not in before
        page.wait_for_function(
            "document.querySelector('[data-testid=run-status]')?.dataset.status === 'succeeded'",
            timeout=20_000)
        assert errors.messages == []
