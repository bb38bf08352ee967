"""The links procscope prints are links a class can open (issue 23, item 2).

The bug: `--host 0.0.0.0` printed `http://<hostname>:PORT/?token=...`, a name students'
laptops can seldom resolve; `--port 0 trace prog.py` printed `http://127.0.0.1:0/runs/1`.

Runs in the pytest process against real servers. The machine's addresses are compared
with psutil.net_if_addrs() (getifaddrs, netlink), a reference procscope does not use: it
reads them from the kernel another way (app.web.links).
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import ROOT

from tools.processes import end

LINK = re.compile(r"http://(\[[^\]]+\]|[^:/\s]+):(\d+)/(\S*)")


class Printed:
    """`procscope ARGS` on its own; every line it prints, collected as it comes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "procscope", "--db", ":memory:", "--log-level", "warning",
             *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def until(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            assert self.proc.poll() is None and time.monotonic() < deadline, self.lines
            time.sleep(0.05)

    def stop(self) -> None:
        end(self.proc, 15)
        self._drain.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def blocks(lines: list[str]) -> dict[str, list[tuple[str, int, str]]]:
    """{"teacher": [(host, port, rest)], "students": [...], "open": [...]}: each line that
    starts with `procscope: ROLE`, and the links under it (lines that start with spaces)."""
    found: dict[str, list[tuple[str, int, str]]] = {}
    role = None
    for line in lines:
        head = re.match(r"procscope: (teacher|students|open)\b", line)
        if head:
            role = head.group(1)
        elif not line.startswith(" "):
            role = None
        match = LINK.search(line)
        if role and match:
            found.setdefault(role, []).append((match.group(1), int(match.group(2)),
                                               match.group(3)))
    return found


def machine_addresses(family: socket.AddressFamily) -> list[str]:
    """This machine's addresses of `family` another machine can open, as psutil lists them
    (loopback, link-local and IPv6's deprecated site-local scope left out)."""
    addresses = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family != family:
                continue
            address = ipaddress.ip_address(entry.address.split("%")[0])
            if address.is_loopback or address.is_link_local or (
                    address.version == 6 and address.is_site_local):
                continue
            shown = f"[{address}]" if address.version == 6 else str(address)
            if shown not in addresses:
                addresses.append(shown)
    return addresses


def ipv6_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_every_interface_gets_a_link_per_address_and_the_name_last(host: str) -> None:
    if host == "::" and not ipv6_works():
        pytest.skip("no IPv6 on this machine")
    server = Printed("--host", host, "--port", "0")
    try:
        match = server.until(r"procscope: students.*:(\d+)/\?token=(\w+)")
        port = int(match.group(1))
        loopback = "[::1]" if host == "::" else "127.0.0.1"
        assert _wait_answering(port, match.group(2), server, loopback) == 200
    finally:
        server.stop()  # then every line it printed has been read
    printed = blocks(server.lines)
    expected_v4 = machine_addresses(socket.AF_INET)
    expected_v6 = []
    if host == "::":  # Linux's default: a `::` socket takes IPv4 too (bindv6only 0)
        if Path("/proc/sys/net/ipv6/bindv6only").read_text().strip() == "1":
            expected_v4 = []
        expected_v6 = machine_addresses(socket.AF_INET6)
    for role in ("teacher", "students"):
        hosts = [h for h, _, _ in printed[role]]
        assert hosts[-1] == socket.gethostname(), (role, server.lines)  # the name last
        v4 = [h for h in hosts[:-1] if not h.startswith("[")]
        v6 = [h for h in hosts[:-1] if h.startswith("[")]
        assert hosts[:-1] == v4 + v6, (role, server.lines)  # IPv4 first
        assert sorted(v4) == sorted(expected_v4) and sorted(v6) == sorted(expected_v6), \
            (role, server.lines)
        assert {p for _, p, _ in printed[role]} == {port} and port != 0
    # The generated token is printed (it is new), the same in every teacher's link.
    assert len({rest for _, _, rest in printed["teacher"]}) == 1
    assert "…" not in printed["teacher"][0][2]
    assert len({rest for _, _, rest in printed["students"]}) == 1


def _wait_answering(port: int, token: str, server: Printed, host: str = "127.0.0.1") -> int:
    """The status of GET /api/runs with `token`, once the server answers on `port`."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(f"http://{host}:{port}/api/runs",
                             headers={"Authorization": f"Bearer {token}"}, timeout=2).status_code
        except httpx.HTTPError:
            assert server.proc.poll() is None and time.monotonic() < deadline, server.lines
            time.sleep(0.05)


def test_a_given_token_is_never_printed_in_any_link(tmp_path: Path) -> None:
    token = "teacher-" + os.urandom(12).hex()
    server = Printed("--host", "0.0.0.0", "--port", "0", env={"PROCSCOPE_TOKEN": token})
    try:
        port = int(server.until(r"procscope: students.*:(\d+)/").group(1))
        assert _wait_answering(port, token, server) == 200
    finally:
        server.stop()
    printed = blocks(server.lines)
    assert len(printed["teacher"]) == len(printed["students"]) >= 2
    assert {rest for _, _, rest in printed["teacher"]} == {"?token=…"}
    assert token not in "\n".join(server.lines)


def test_port_0_prints_the_port_it_got() -> None:
    server = Printed("--port", "0")
    try:
        match = server.until(r"procscope: open http://127\.0\.0\.1:(\d+)/")
        port = int(match.group(1))
        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/api/experiments", timeout=10).status_code \
            == 200
    finally:
        server.stop()


def test_trace_with_port_0_prints_the_port_its_server_got(tmp_path: Path) -> None:
    """`procscope --port 0 trace prog.py`, no server running: the page it names is real."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    proc = subprocess.Popen(
        [sys.executable, "-m", "procscope", "--port", "0", "trace", "-c", "print('hi')"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PROCSCOPE_RUNTIME_DIR": str(runtime),
             "XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        assert proc.stderr is not None
        said = []
        for _ in range(20):
            said.append(proc.stderr.readline())
            assert said[-1], said
            if "its run stays on" in said[-1]:
                break
        pages = [m for line in said for m in LINK.finditer(line)]
        assert len(pages) == 2, said  # `run 1: PAGE`, then `its run stays on PAGE`
        port = int(pages[0].group(2))
        assert port != 0 and {int(m.group(2)) for m in pages} == {port}
        page = httpx.get(pages[0].group(0), timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # the Ctrl-C it waits for
        proc.communicate(timeout=30)
    assert proc.returncode == 0
