"""Who may do what: tokens, Host and Origin checks, JSON-only bodies of bounded size.

Runs in the server, as pure ASGI middleware (BaseHTTPMiddleware would buffer and wrap
every SSE stream). A dashboard that starts processes on request is a remote-execution
service if done wrong (CVE-2023-48022, Ray's job API), so:

- with a token in force (always, when bound beyond loopback), starting and cancelling
  runs needs the admin token; the viewer token lets students watch runs and streams;
  anything else is 401. A token arrives as `Authorization: Bearer`, or once as `?token=`
  on a page link, which sets an HttpOnly cookie for the browser's later requests.
- the Host header must name this server (DNS rebinding);
- state-changing requests from another site (Origin, Sec-Fetch-Site) are 403;
- request bodies must be JSON (a cross-site HTML form cannot send that) and small.

Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from procscope import i18n
from procscope.live.said import answer, said
from procscope.web import error_pages, pages

COOKIE = "procscope_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 16 * 1024
PUBLIC_PREFIXES = ("/static/",)
# What a viewer (the students' link) may still POST: an answer to the class's question.
VIEWER_POSTS = frozenset({"/api/prediction/answers"})
JSON_ONLY = frozenset({"application/json"})
IMPORT_MAX_BYTES = 64 * 2**20  # POST /api/runs/import: one exported run (app.history.run_import)
# Routes whose bodies are bigger than a request's: an exported run brought back
# (app.history.run_import).
LARGE_BODIES = {"/api/runs/import": (IMPORT_MAX_BYTES,
                                     frozenset({"application/json", "application/x-ndjson"}))}


class Guard:
    """The ASGI middleware; `admin_token` None means an open loopback server."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: set[str], admin_token: str | None,
                 viewer_token: str | None, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.admin_token = admin_token
        self.viewer_token = viewer_token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        method = scope["method"]
        path: str = scope["path"]
        # A browser opening a page is refused with a page, in its language (app.web.error_pages).
        lang = i18n.choose(headers.get("cookie", ""), headers.get("accept-language", "")) \
            if error_pages.wants_html(path, headers.get("accept", "")) else None
        host = _hostname(headers.get("host", ""))
        if not host_allowed(self.allowed_hosts, host):
            await _deny(send, 400, said("Host %(host)s is not this server's name",
                                        host=repr(host)), lang=lang)
            return
        if method not in SAFE_METHODS:
            if headers.get("sec-fetch-site") == "cross-site":
                await _deny(send, 403, "cross-site requests may not change anything", lang=lang)
                return
            origin = headers.get("origin")
            if origin and origin != "null" and _hostname(urlsplit(origin).netloc) \
                    not in self.allowed_hosts and _hostname(urlsplit(origin).netloc) != host:
                await _deny(send, 403, f"Origin {origin!r} may not change anything", lang=lang)
                return
            if origin == "null":
                await _deny(send, 403, "an opaque Origin may not change anything", lang=lang)
                return
        role, from_query = self._role(scope, headers)
        # For the pages: show the controls that change things only to those who may.
        scope.setdefault("state", {})["role"] = role
        if self.admin_token is not None and not path.startswith(PUBLIC_PREFIXES):
            if role is None:
                if lang is not None:
                    await _how_to_get_in(send, lang)
                    return
                await _deny(send, 401, said("a token is needed: the link with ?token=..., or "
                                            "Authorization: Bearer <token>"),
                            {"www-authenticate": "Bearer"})
                return
            if role == "viewer" and method not in SAFE_METHODS and path not in VIEWER_POSTS:
                await _deny(send, 403, said("the viewer link can watch runs, not start or "
                                            "cancel them"), lang=lang)
                return
        max_body = self.max_body
        if method not in SAFE_METHODS and method != "DELETE":
            max_body, types = LARGE_BODIES.get(path, (self.max_body, JSON_ONLY))
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in types:
                await _deny(send, 415, "request bodies must be JSON (application/json)"
                            if types == JSON_ONLY else
                            f"the body must be {' or '.join(sorted(types))}")
                return
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > max_body):
                await _deny(send, 413, said("request body over %(size)s", size=_size(max_body)))
                return
            receive = _limit_body(receive, max_body)
        if from_query is not None:
            send = _set_cookie(send, from_query)
        try:
            await self.app(scope, receive, send)
        except _BodyTooLarge:
            await _deny(send, 413, said("request body over %(size)s", size=_size(max_body)))

    def _role(self, scope: Scope, headers: dict[str, str]) -> tuple[str | None, str | None]:
        """('admin' | 'viewer' | None, the token if it came in the query string)."""
        if self.admin_token is None:
            return "admin", None
        candidates: list[tuple[str, bool]] = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            candidates.append((auth[7:].strip(), False))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        for value in query.get("token", [])[:1]:
            candidates.append((value, True))
        cookie = SimpleCookie(headers.get("cookie", ""))
        if COOKIE in cookie:
            candidates.append((cookie[COOKIE].value, False))
        for token, in_query in candidates:
            for role, expected in (("admin", self.admin_token), ("viewer", self.viewer_token)):
                if expected and hmac.compare_digest(token.encode(), expected.encode()):
                    return role, (token if in_query else None)
        return None, None


class _BodyTooLarge(HTTPException):
    """Raised while the app reads a body past the limit (one sent chunked, no length).

    An HTTPException, because FastAPI turns any other error raised while it reads a body
    into "400 There was an error parsing the body"; this one it lets through to its
    handler, which answers 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, said("request body over %(size)s", size=_size(limit)))


def _limit_body(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge(limit)
        return message

    return limited


def _set_cookie(send: Send, token: str) -> Send:
    async def with_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            message = dict(message, headers=[*message.get("headers", []),
                                             (b"set-cookie", cookie.encode("latin-1"))])
        await send(message)

    return with_cookie


def _size(n: int) -> str:
    """16384 bytes, 64 MiB: a cap as people say it."""
    return f"{n // 2**20} MiB" if n >= 2**20 and n % 2**20 == 0 else f"{n} bytes"


def host_allowed(allowed_hosts: set[str], host: str) -> bool:
    """Does a request's host name (from `_hostname`) name this server? "*": any name."""
    return "*" in allowed_hosts or host in allowed_hosts


def _hostname(netloc: str) -> str:
    """The host name of a Host header or an Origin's netloc, lower case, without port."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):  # [::1]:8000
        return netloc[1:netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


async def _how_to_get_in(send: Send, lang: str) -> None:
    """A browser opening a page without the token: how to get in, in its language (an HTML
    page, templates/how_to_get_in.html), not the API's JSON 401."""
    body = pages.how_to_get_in(lang)
    await send({"type": "http.response.start", "status": 401, "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b"Bearer"), (b"cache-control", b"no-store"),
        (b"content-language", lang.encode()), (b"vary", b"Accept-Language, Cookie")]})
    await send({"type": "http.response.body", "body": body})


async def _deny(send: Send, status: int, detail: str,
                extra: dict[str, str] | None = None, lang: str | None = None) -> None:
    """The refusal: JSON (`{"detail"}`, docs/api.md), or, with the `lang` of a browser
    opening a page, the error page (app.web.error_pages)."""
    if lang is None:
        body = json.dumps(answer(detail)).encode()
        kind = b"application/json"
    else:
        body = error_pages.page(status, detail, lang)
        kind = b"text/html; charset=utf-8"
        extra = {**(extra or {}), **error_pages.headers(lang)}
    headers: list[Any] = [(b"content-type", kind),
                          (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
