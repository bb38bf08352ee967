"""An error a person meets in a browser: a page in the app's look and their language.

Runs in the server: FastAPI's handler for every HTTPException (app.web.main: a run or page that
does not exist, a method a path does not take) and app.web.guard (a Host that is not this
server's name, a change refused) ask `wants_html()`. A browser opening a page sends
`Accept: text/html`; the API (/api/...), the page's own fetch() and EventSource, curl and
scripts (`*/*`) do not, and get the JSON of docs/api.md (`{"detail": ...}`) as before.
The page (templates/error.html) says what happened and leads back to the dashboard, in the
page's language (app.i18n: the switch's cookie, else Accept-Language).
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from procscope import i18n
from procscope.live.said import Said, said
from procscope.live.said import http_exception as json_answer
from procscope.web import pages

# What the page's heading says for a status; any other says HEADINGS[None].
HEADINGS: dict[int | None, Said] = {
    400: said("This server does not answer to that address"),
    403: said("This is not allowed"),
    404: said("There is nothing here"),
    405: said("This address does not take that request"),
    None: said("Something went wrong"),
}


def wants_html(path: str, accept: str) -> bool:
    """A browser opening a page (not the API, not a script's fetch): it is told in HTML."""
    return not path.startswith("/api/") and "text/html" in accept


def page(status: int, detail: object, lang: str) -> bytes:
    """The error page for `status` in `lang`; `detail` is what went wrong (a Said is said
    in `lang`; other text is English, and marked so)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    heading = HEADINGS.get(status, HEADINGS[None]).in_language(lang)
    if isinstance(detail, Said):
        return pages.error_page(lang, status, heading, detail.in_language(lang), lang)
    # Starlette's own "Not Found" and the like say no more than the heading does.
    shown = "" if detail == phrase else str(detail)
    return pages.error_page(lang, status, heading, shown, i18n.DEFAULT)


def headers(lang: str) -> dict[str, str]:
    return {"content-language": lang, "cache-control": "no-store",
            "vary": "Accept, Accept-Language, Cookie"}


async def http_exception(request: Request, exc: Exception) -> Response:
    """An HTTPException: the error page for a browser's page, else the API's JSON."""
    assert isinstance(exc, HTTPException)
    if not wants_html(request.url.path, request.headers.get("accept", "")):
        return await json_answer(request, exc)
    lang = i18n.language(request)
    return Response(page(exc.status_code, exc.detail, lang), status_code=exc.status_code,
                    media_type="text/html; charset=utf-8",
                    headers={**(exc.headers or {}), **headers(lang)})
