"""What the server says to a person when it refuses: English, and the page's key to say it in
the reader's language.

Runs in the server. A refusal the page shows (a run or process cap reached, the viewer
link's Run, a What-if signal to a pid that is not the run's, an import that is not an
export) is written `said("%(live)s runs are live, the cap is %(cap)s: ...", live=n, cap=m)`:
a `Said` is the English text itself (a str: it goes wherever the message went before, into
an exception, an HTTPException's detail, a 422 item's msg), and it remembers its key and
values. The error answer keeps its English `detail` as it was (what curl and scripts read)
and adds, beside it, what the page needs:

    {"detail": "2 runs are live, the cap is 2: wait for one to end or cancel one",
     "i18n": {"key": "%(live)s runs are live, the cap is %(cap)s: wait for one to end or
                      cancel one", "values": {"live": 2, "cap": 2}}}

and in a 422's list, each item's `msg` the same way (an `i18n` member beside it). The
page's static/i18n.js `told()` shows `t(key, values)`, so a Chinese page says it in Chinese
from the one catalog, static/i18n.zh.json; a message without an entry shows its English.
A 422 item's `msg` itself is in the request's language (app.i18n.language: the page's
cookie, else Accept-Language), so that `curl -H 'Accept-Language: zh'` reads Chinese too;
a `detail` string stays English, what scripts read (docs/api.md).

Why the English text (with `%(name)s`) as the key, and not a machine-readable code: every
string of the interface is keyed by its English already (ARCHITECTURE.md, decision 14), so
the catalog keeps one kind of key, the page translates a server's message with the t() it
uses for its own strings, and tests/test_i18n.py finds these keys in the source (the calls
of `said()`) as it finds `_()` and `t()`, and fails on one without its Chinese. A code would
be a second registry (code -> English for the API, code -> Chinese for the page) to keep in
step with the first, for two languages. The cost is the same as for any interface string:
rewording a message's English changes its key, and the catalog test says so.
"""

from __future__ import annotations

from typing import Any

from fastapi.exception_handlers import http_exception_handler
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from procscope import i18n

Value = str | int | float


class Said(str):
    """A message in English (the str itself), with its catalog key and values."""

    key: str
    values: dict[str, Value]

    def __new__(cls, key: str, values: dict[str, Value]) -> Said:
        self = super().__new__(cls, key % values)
        self.key = key
        self.values = values
        return self

    @classmethod
    def keeping(cls, english: str, said: Said) -> Said:
        """`said`'s key and values, its English the text given (pydantic's own message:
        app.web.invalid_input)."""
        self = str.__new__(cls, english)
        self.key = said.key
        self.values = said.values
        return self

    def i18n(self) -> dict[str, Any]:
        return {"key": self.key, "values": self.values}

    def in_language(self, lang: str) -> str:
        """The message in `lang`: itself in English, else its key's entry in the catalog."""
        if lang == i18n.DEFAULT or self.key not in i18n.catalog():
            return str(self)
        return i18n.translate(lang, self.key) % self.values


def said(key: str, **values: Value) -> Said:
    """`key` (English, `%(name)s` for each value, `%%` for a percent sign) filled in."""
    return Said(key, values)


def message(error: BaseException) -> str:
    """What an exception raised with a message says: its Said if it was given one."""
    first = error.args[0] if error.args else None
    return first if isinstance(first, Said) else str(error)


def answer(detail: Any, lang: str = i18n.DEFAULT) -> dict[str, Any]:
    """An error answer's body: `{"detail": ...}`, with `i18n` beside each Said in it; a
    list's (a 422's) `msg` in `lang`."""
    body: dict[str, Any] = {"detail": detail}
    if isinstance(detail, Said):
        body["i18n"] = detail.i18n()
    elif isinstance(detail, list):
        body["detail"] = [item | {"msg": item["msg"].in_language(lang),
                                  "i18n": item["msg"].i18n()}
                          if isinstance(item, dict) and isinstance(item.get("msg"), Said)
                          else item for item in detail]
    return body


def carries_said(detail: Any) -> bool:
    return isinstance(detail, Said) or (isinstance(detail, list) and any(
        isinstance(item, dict) and isinstance(item.get("msg"), Said) for item in detail))


async def http_exception(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer to an HTTPException, with the i18n members where it said one."""
    assert isinstance(exc, HTTPException)
    if not carries_said(exc.detail):
        return await http_exception_handler(request, exc)
    return JSONResponse(answer(exc.detail, i18n.language(request)),
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


# The error answers of the API's routes, for the OpenAPI schema (app.web.api,
# app.classroom.classroom, app.classroom.what_if): the body is `detail`, with `i18n` beside
# it where said() made it.
class Problem(BaseModel):
    """The body of an error answer: what went wrong, in words (a 422 has its own)."""

    detail: str


def error_answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route can give, for the OpenAPI schema (checked by schemathesis)."""
    return {code: {"model": Problem, "description": WHY[code]} for code in codes}


WHY = {
    400: "The Host header does not name this server, or the body cannot be parsed",
    401: "A token is needed (Authorization: Bearer, or the ?token= link's cookie)",
    403: "A viewer token, or a cross-site request, may not change anything",
    404: "No such experiment or run",
    409: "The run is live: cancel it first",
    413: "The request body is over 16 KiB",
    415: "The request body is not JSON",
    429: "A cap is reached (live runs, or live processes of runs): the detail says which",
    503: "Too many event streams are open; try again after Retry-After seconds",
}
