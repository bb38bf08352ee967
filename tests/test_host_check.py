"""Unit tests for the Host check (DNS rebinding): which Host headers name this server."""

from __future__ import annotations

from procscope.web.guard import _hostname, host_allowed
from procscope.web.main import LOOPBACK_NAMES


def test_hostname_of_a_host_header() -> None:
    assert _hostname("127.0.0.1:8000") == "127.0.0.1"
    assert _hostname("LocalHost:8000") == "localhost"
    assert _hostname("[::1]:8000") == "::1"
    assert _hostname("[::1]") == "::1"
    assert _hostname("::1") == "::1"  # bare IPv6, no port
    assert _hostname(" example.org ") == "example.org"
    assert _hostname("") == ""


def test_only_the_servers_own_names_pass() -> None:
    allowed = set(LOOPBACK_NAMES)
    for header in ("127.0.0.1:8000", "localhost:1", "[::1]:8000"):
        assert host_allowed(allowed, _hostname(header)), header
    for header in ("evil.example:8000", "127.0.0.1.evil.example", "", "localhost.:8000"):
        assert not host_allowed(allowed, _hostname(header)), header
    assert host_allowed(allowed | {"class.local"}, _hostname("Class.Local:8000"))
    # Bound to every interface: any name may reach the server (the token still holds).
    assert host_allowed({"*"}, _hostname("anything:1"))
