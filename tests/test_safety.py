"""Issue 6, access and limits: who may start, cancel and watch runs, and the global caps.

Every test talks to a real `python -m procscope` on a loopback port. Each one pins a protection
of app.web.guard or of the caps, and fails if that protection is removed.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Frame, Server, iter_sse, read_events, read_until

TOKEN = "teacher-" + secrets.token_urlsafe(18)
QUICK = {"experiment": "join", "params": {"durations": [0], "time_scale": 0.01}}
LONG = {"experiment": "join", "params": {"durations": [30], "time_scale": 1}}


@pytest.fixture(scope="module")
def token_server() -> Iterator[Server]:
    # --log-level info: the log must stay free of tokens even when it says the most.
    srv = Server("--token", TOKEN, "--log-level", "info", token=TOKEN)
    yield srv
    srv.stop()


def viewer_of(srv: Server) -> str:
    return srv.links()["students"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def finish(client: httpx.Client, run_id: str, headers: dict[str, str] | None = None) -> None:
    """Read the run's stream to run.end (so its processes are gone before the test ends)."""
    assert read_events(client, run_id, headers=headers)[-1]["kind"] == "run.end"


def run_count(client: httpx.Client, headers: dict[str, str] | None = None) -> int:
    return len(client.get("/api/runs", headers=headers or {}).json())


# --- access: the open loopback default ---------------------------------------------------


def test_loopback_default_needs_no_token(server: Server, client: httpx.Client) -> None:
    assert client.get("/api/experiments").status_code == 200
    assert client.get("/").status_code == 200
    created = client.post("/api/runs", json=QUICK)
    assert created.status_code == 201
    finish(client, created.json()["id"])
    assert client.delete(f"/api/runs/{created.json()['id']}").status_code == 200
    assert "procscope: open http://127.0.0.1:" in server.output()
    assert "token=" not in server.output()


def test_caps_have_their_documented_defaults(client: httpx.Client) -> None:
    caps = client.get("/api/status").json()["caps"]
    assert caps == {"runs": 8, "processes": 2000, "streams": 1000, "events": 1_000_000}


# --- access: a token in force --------------------------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("GET", "/"), ("GET", "/runs/1"), ("GET", "/api/experiments"), ("GET", "/api/runs"),
    ("GET", "/api/runs/1"), ("GET", "/api/runs/1/events"), ("GET", "/api/status"),
    ("GET", "/openapi.json"), ("POST", "/api/runs"), ("DELETE", "/api/runs/1"),
])
def test_without_a_token_everything_is_401(token_server: Server, method: str,
                                            path: str) -> None:
    body = json.dumps(QUICK) if method == "POST" else None
    wrong = "x" + TOKEN
    for headers, params in (({}, {}), (bearer(wrong), {}), ({}, {"token": wrong}),
                            ({"Cookie": f"procscope_token={wrong}"}, {})):
        r = httpx.request(method, token_server.url + path, content=body, params=params,
                          headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 401, (method, path, headers, params, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert "set-cookie" not in r.headers


def test_static_files_are_public(token_server: Server) -> None:
    # The page that asks for a token must be able to load its own CSS and scripts.
    assert httpx.get(token_server.url + "/static/app.css").status_code == 200


def test_admin_bearer_starts_and_cancels(token_server: Server) -> None:
    with httpx.Client(base_url=token_server.url, headers=bearer(TOKEN), timeout=30) as admin:
        created = admin.post("/api/runs", json=LONG)
        assert created.status_code == 201
        run_id = created.json()["id"]
        read_until(admin, run_id, lambda e: e["kind"] == "proc.start")
        cancelled = admin.delete(f"/api/runs/{run_id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_viewer_watches_but_cannot_start_or_cancel(token_server: Server) -> None:
    viewer_token = viewer_of(token_server)
    assert viewer_token != TOKEN
    admin = httpx.Client(base_url=token_server.url, headers=bearer(TOKEN), timeout=30)
    viewer = httpx.Client(base_url=token_server.url, headers=bearer(viewer_token), timeout=30)
    with admin, viewer:
        run_id = admin.post("/api/runs", json=LONG).json()["id"]
        # Watching: the run, the list, the page, and the live stream.
        events = read_until(viewer, run_id, lambda e: e["kind"] == "proc.start")
        assert events[0]["kind"] == "run.start"
        assert viewer.get(f"/api/runs/{run_id}").json()["status"] == "running"
        assert any(r["id"] == run_id for r in viewer.get("/api/runs").json())
        assert viewer.get(f"/runs/{run_id}").status_code == 200
        # Acting: refused, and the run goes on.
        r = viewer.delete(f"/api/runs/{run_id}")
        assert r.status_code == 403 and "viewer" in r.json()["detail"]
        assert viewer.post("/api/runs", json=QUICK).status_code == 403
        assert viewer.get(f"/api/runs/{run_id}").json()["status"] == "running"
        assert run_count(viewer) == run_count(admin)
        assert admin.delete(f"/api/runs/{run_id}").json()["status"] == "cancelled"
        # The viewer's stream of the finished run ends with run.end.
        assert read_events(viewer, run_id)[-1]["data"]["status"] == "cancelled"


def cookie_from(response: httpx.Response) -> str:
    set_cookie = response.headers["set-cookie"]
    attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes, set_cookie
    assert "samesite=strict" in set_cookie.lower()
    name_value = set_cookie.split(";")[0]
    assert name_value.startswith("procscope_token=")
    return name_value


def test_token_link_sets_an_httponly_cookie_for_later_requests(token_server: Server) -> None:
    url = token_server.url
    # The students' link: the page, then everything with the cookie alone.
    page = httpx.get(url + "/", params={"token": viewer_of(token_server)})
    assert page.status_code == 200
    viewer_cookie = {"Cookie": cookie_from(page)}
    with httpx.Client(base_url=url, headers=viewer_cookie, timeout=30) as viewer:
        assert viewer.get("/api/runs").status_code == 200
        assert viewer.get("/").status_code == 200
        r = viewer.post("/api/runs", json=QUICK, headers={"Origin": url})
        assert r.status_code == 403
    # The teacher's link: the cookie alone can start and cancel (as the page's JS does).
    page = httpx.get(url + "/", params={"token": TOKEN})
    assert page.status_code == 200
    with httpx.Client(base_url=url, headers={"Cookie": cookie_from(page), "Origin": url},
                      timeout=30) as teacher:
        created = teacher.post("/api/runs", json=LONG)
        assert created.status_code == 201
        run_id = created.json()["id"]
        with httpx.Client(base_url=url, headers=viewer_cookie, timeout=30) as viewer:
            read_until(viewer, run_id, lambda e: e["kind"] == "proc.start")
        assert teacher.delete(f"/api/runs/{run_id}").json()["status"] == "cancelled"
    # A request with a header token sets no cookie.
    assert "set-cookie" not in httpx.get(url + "/", headers=bearer(TOKEN)).headers


def test_procscope_token_from_the_environment() -> None:
    token = secrets.token_urlsafe(16)
    srv = Server(env={"PROCSCOPE_TOKEN": token}, token=token)
    try:
        # Issue 13: a token the teacher chose is never printed; `?token=…` says where it goes.
        assert token not in srv.output() and "?token=…" in srv.output()
        assert "teacher" not in srv.links()
        assert httpx.get(srv.url + "/api/runs").status_code == 401
        assert httpx.get(srv.url + "/api/runs", headers=bearer(token)).status_code == 200
    finally:
        srv.stop()


def test_non_loopback_bind_generates_a_strong_token_and_enforces_it() -> None:
    # Bound to every interface; this test only ever connects to 127.0.0.1.
    srv = Server("--host", "0.0.0.0")
    try:
        links = srv.links()
        token, viewer_token = links["teacher"], links["students"]
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128
        assert len(bytes.fromhex(viewer_token)) * 8 >= 128
        assert token != viewer_token
        url = srv.url
        assert httpx.get(url + "/api/runs").status_code == 401
        assert httpx.get(url + "/").status_code == 401
        assert httpx.post(url + "/api/runs", json=QUICK).status_code == 401
        assert httpx.post(url + "/api/runs", json=QUICK,
                          headers=bearer(viewer_token)).status_code == 403
        with httpx.Client(base_url=url, headers=bearer(token), timeout=30) as admin:
            created = admin.post("/api/runs", json=QUICK)
            assert created.status_code == 201
            finish(admin, created.json()["id"])
        # A token of another server is no good here.
        assert httpx.get(url + "/api/runs", headers=bearer(TOKEN)).status_code == 401
    finally:
        srv.stop()


def test_tokens_never_appear_in_the_output_but_in_the_printed_links(
        token_server: Server) -> None:
    url = token_server.url
    viewer_token = viewer_of(token_server)
    for token in (TOKEN, viewer_token):
        assert httpx.get(url + "/", params={"token": token}).status_code == 200
        assert httpx.get(url + "/api/runs", params={"token": token}).status_code == 200
        assert httpx.get(url + "/api/runs/999", params={"token": token}).status_code == 404
        assert httpx.get(url + "/nope", params={"token": token}).status_code == 404
    r = httpx.post(url + "/api/runs", params={"token": TOKEN},
                   json={"experiment": "join", "params": {"durations": [99]}})
    assert r.status_code == 422
    assert httpx.get(url + "/api/runs", params={"token": "x" + TOKEN}).status_code == 401
    # Something the server does log at info, after all that: once it is in the output,
    # the lines about the requests above would be too.
    with httpx.Client(base_url=url, headers=bearer(TOKEN), timeout=30) as admin:
        run_id = admin.post("/api/runs", json=QUICK).json()["id"]
        finish(admin, run_id)
    marker = f"run {run_id}: join started"
    deadline = time.monotonic() + 5
    while marker not in token_server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    out = token_server.output()
    assert marker in out
    lines_with = {t: [line for line in out.splitlines() if t in line]
                  for t in (TOKEN, viewer_token)}
    assert lines_with[TOKEN] == []  # given with --token: never printed (issue 13)
    assert any("teacher" in line and "?token=…" in line for line in out.splitlines())
    assert len(lines_with[viewer_token]) == 1 and "students" in lines_with[viewer_token][0]
    assert "x" + TOKEN not in out


# --- access: Host, Origin, bodies ----------------------------------------------------------


def test_host_header_must_name_this_server(server: Server, client: httpx.Client) -> None:
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1.evil.example"):
        for path in ("/", "/api/experiments", "/api/runs"):
            r = client.get(path, headers={"Host": host})
            assert r.status_code == 400, (host, path)
            assert "Host" in r.json()["detail"]
        r = client.post("/api/runs", json=QUICK, headers={"Host": host})
        assert r.status_code == 400
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        assert client.get("/api/experiments", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://evil.example:8000"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1"},
], ids=["origin", "origin-port", "origin-null", "sec-fetch-site", "sec-fetch-site-own-origin"])
def test_cross_site_requests_cannot_change_anything(client: httpx.Client,
                                                    headers: dict[str, str]) -> None:
    before = run_count(client)
    r = client.post("/api/runs", json=QUICK, headers=headers)
    assert r.status_code == 403, r.text
    assert run_count(client) == before
    run_id = client.post("/api/runs", json=LONG).json()["id"]
    try:
        assert client.delete(f"/api/runs/{run_id}", headers=headers).status_code == 403
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
        # Reading is not changing anything: a cross-site GET is still answered.
        assert client.get(f"/api/runs/{run_id}", headers=headers).status_code == 200
    finally:
        assert client.delete(f"/api/runs/{run_id}").json()["status"] == "cancelled"


def test_same_site_requests_are_allowed(server: Server, client: httpx.Client) -> None:
    for headers in ({"Origin": server.url}, {"Origin": f"http://localhost:{server.port}"},
                    {"Sec-Fetch-Site": "same-origin", "Origin": server.url},
                    {"Sec-Fetch-Site": "none"}):
        created = client.post("/api/runs", json=QUICK, headers=headers)
        assert created.status_code == 201, (headers, created.text)
        finish(client, created.json()["id"])


@pytest.mark.parametrize("kind", ["text/plain", "form", "multipart", "none"])
def test_only_json_bodies(client: httpx.Client, kind: str) -> None:
    before = run_count(client)
    body = json.dumps(QUICK)
    if kind == "text/plain":  # what a cross-site <form enctype="text/plain"> can send
        r = client.post("/api/runs", content=body, headers={"Content-Type": "text/plain"})
    elif kind == "form":
        r = client.post("/api/runs", data={"experiment": "join"})
    elif kind == "multipart":
        r = client.post("/api/runs", files={"experiment": ("x.json", body.encode())})
    else:
        r = client.post("/api/runs", content=body, headers={"Content-Type": ""})
    assert r.status_code == 415, r.text
    assert run_count(client) == before


def padded(size: int) -> bytes:
    """A valid run request of exactly `size` bytes (JSON whitespace as the padding)."""
    body = json.dumps(QUICK).encode()
    return body[:-1] + b" " * (size - len(body)) + body[-1:]


def test_body_over_16_kib_is_413_with_content_length(client: httpx.Client) -> None:
    before = run_count(client)
    r = client.post("/api/runs", content=padded(16 * 1024 + 1),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert run_count(client) == before
    # At the limit, the same request is fine: the limit is 16 KiB, not "any padding".
    r = client.post("/api/runs", content=padded(16 * 1024),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    finish(client, r.json()["id"])


def test_body_over_16_kib_is_413_when_chunked(client: httpx.Client) -> None:
    before = run_count(client)
    body = padded(20 * 1024)

    def chunks() -> Iterator[bytes]:  # no length known up front: Transfer-Encoding: chunked
        for at in range(0, len(body), 1024):
            yield body[at:at + 1024]

    r = client.post("/api/runs", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 413, r.text
    assert run_count(client) == before


# --- limits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capped() -> Iterator[Server]:
    with Server("--max-runs", "2", "--max-processes", "5", "--max-streams", "2",
                "--max-events", "40") as srv:
        yield srv


@pytest.fixture
def capped_client(capped: Server) -> Iterator[httpx.Client]:
    with capped.client() as c:
        yield c


def test_max_runs_is_429_with_the_reason(capped_client: httpx.Client) -> None:
    c = capped_client
    first = c.post("/api/runs", json=LONG)
    second = c.post("/api/runs", json=LONG)
    assert first.status_code == second.status_code == 201
    third = c.post("/api/runs", json=LONG)
    assert third.status_code == 429
    assert "2 runs are live, the cap is 2" in third.json()["detail"]
    assert c.delete(f"/api/runs/{first.json()['id']}").json()["status"] == "cancelled"
    # A slot is free again.
    fourth = c.post("/api/runs", json=LONG)
    assert fourth.status_code == 201
    for run in (second, fourth):
        assert c.delete(f"/api/runs/{run.json()['id']}").json()["status"] == "cancelled"


def test_max_processes_is_429_with_the_reason(capped_client: httpx.Client) -> None:
    c = capped_client
    run_id = c.post("/api/runs", json={"experiment": "ticket_rush",
                                       "params": {"n": 8, "time_scale": 5}}).json()["id"]
    starts = 0

    def all_started(event: dict[str, Any]) -> bool:
        nonlocal starts
        starts += int(event["kind"] == "proc.start")
        return starts == 9

    read_until(c, run_id, all_started)
    r = c.post("/api/runs", json=QUICK)
    assert r.status_code == 429
    assert "processes of runs are alive, the cap is 5" in r.json()["detail"]
    assert c.delete(f"/api/runs/{run_id}").json()["status"] == "cancelled"
    created = c.post("/api/runs", json=QUICK)
    assert created.status_code == 201
    assert read_events(c, created.json()["id"])[-1]["data"]["status"] == "succeeded"


def streams_live(c: httpx.Client) -> int:
    return int(c.get("/api/status").json()["streams"])


def test_max_streams_is_503_with_the_reason(capped_client: httpx.Client) -> None:
    c = capped_client
    run_id = c.post("/api/runs", json=LONG).json()["id"]
    path = f"/api/runs/{run_id}/events"
    try:
        with c.stream("GET", path) as one, c.stream("GET", path) as two:
            readers = [iter_sse(one), iter_sse(two)]  # kept: a dropped reader closes its stream
            for reader in readers:
                assert next(f for f in reader if isinstance(f, Frame)).event == "run.start"
            assert streams_live(c) == 2
            refused = c.get(path)
            assert refused.status_code == 503
            assert "the cap is 2" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "5"
            assert c.get(path + ".ndjson").status_code == 503
        # Both closed: the count goes back down (polled: the server sees the close soon).
        deadline = time.monotonic() + 5
        while streams_live(c) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert streams_live(c) == 0
        with c.stream("GET", path) as again:
            assert again.status_code == 200
    finally:
        assert c.delete(f"/api/runs/{run_id}").json()["status"] == "cancelled"


def test_max_events_counts_the_dropped_and_keeps_the_lifecycle(
        capped_client: httpx.Client) -> None:
    c = capped_client
    run_id = c.post("/api/runs", json={"experiment": "ticket_rush",
                                       "params": {"n": 8, "time_scale": 0.05}}).json()["id"]
    events = read_events(c, run_id)
    run = c.get(f"/api/runs/{run_id}").json()
    end = events[-1]
    assert end["kind"] == "run.end" and end["data"]["status"] == "succeeded"
    assert run["dropped"] > 0 and end["data"]["dropped"] == run["dropped"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert run["events"] == len(events)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run.start" and kinds.count("run.start") == kinds.count("run.end") == 1
    # Every process's start and exit is there, past the cap too.
    started = {e["pid"] for e in events if e["kind"] == "proc.start"}
    exited = {e["pid"] for e in events if e["kind"] == "proc.exit"}
    assert len(started) == 9 and exited == started
    assert set(run["result"]["buyers"]) < started
    assert run["result"]["sold"] == 1
    # What was dropped is lesson detail: fewer than the 8 buyers' lock events are left.
    assert kinds.count("lock.acquire") < 8
    assert all(e["kind"] in LIFECYCLE for e in events if e["seq"] > 40)


# What a run keeps past its event cap (app.pipe.relay.ALWAYS_KEPT): without these it has no shape.
LIFECYCLE = {"run.start", "run.result", "run.error", "run.end", "proc.start", "proc.exit",
             "proc.reap", "error"}


def test_old_finished_runs_are_forgotten_past_keep_runs() -> None:
    srv = Server("--keep-runs", "2")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            ids = []
            for _ in range(3):
                run = c.post("/api/runs", json={"experiment": "join", "params": {
                    "durations": [0.1], "time_scale": 0.1}}).json()
                read_events(c, run["id"])
                ids.append(run["id"])
            assert [r["id"] for r in c.get("/api/runs").json()] == ids[:0:-1]
            assert c.get(f"/api/runs/{ids[0]}").status_code == 404
            assert c.get(f"/api/runs/{ids[0]}/events").status_code == 404
            assert c.get(f"/api/runs/{ids[2]}").json()["status"] == "succeeded"
    finally:
        srv.stop()
