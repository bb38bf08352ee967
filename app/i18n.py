"""The interface's language: English or Chinese, chosen per request, and the one catalog.

Runs in the server (the pages, the partials htmx fetches, the "how to get in" page). The
browser's half is static/i18n.js, which reads the same catalog, inlined in the page.

The choice, in order: the `procscope_lang` cookie (the page's EN / 中文 switch sets it, so
every page the server renders afterwards agrees with the one the user chose), else the
request's Accept-Language (the browser builds it from its languages, navigator.languages),
else English. English is the interface's own language: a string is written in English
where it is used, and that English text is its key.

Why one JSON catalog (static/i18n.zh.json, English text -> Chinese) and not gettext .po/.mo
files with Babel: there are two languages and one of them is the source, so the catalog
is a single flat mapping, and the browser needs the very same mapping (half the strings are
built in static/*.js). A .mo file is unreadable to the browser, so a gettext setup would
need a compile step and a second export to JSON for the page; Babel would be a dependency
for that and for Accept-Language parsing, which for two languages is a few lines here.
What is a library's: the templates use jinja2's own i18n extension (`{{ _("...") }}`,
newstyle: the English text is the msgid, `%(name)s` fills in values, and values are
escaped while the catalog's text is trusted), so the templates are extractable by any
gettext tool, and the browser's t() fills the same `%(name)s` placeholders.
"""

from __future__ import annotations

import json
import re
from functools import cache
from http.cookies import CookieError, SimpleCookie
from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from starlette.requests import Request

from procscope.resources import STATIC

LANGS = ("en", "zh")
DEFAULT = "en"
COOKIE = "procscope_lang"
CATALOG = STATIC / "i18n.zh.json"

# One entry of Accept-Language: a tag, and an optional q (RFC 9110, 12.5.4).
_ACCEPT = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*"
                     r"(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


@cache
def catalog() -> dict[str, str]:
    """English -> Chinese for every interface string; read once (a restart picks up edits)."""
    data = json.loads(CATALOG.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("//")}


def from_accept_language(header: str) -> str:
    """The first of LANGS the header prefers (any zh-* is Chinese), else English."""
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(header.split(",")):
        match = _ACCEPT.match(part)
        if not match:
            continue
        tag = match.group(1).lower().split("-")[0]
        try:
            q = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        if tag in LANGS and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, tag)
    return best[2] if best else DEFAULT


def choose(cookie_header: str, accept_language: str) -> str:
    """The language of a page asked for with these headers: the switch's cookie, else the
    browser's languages (for app.web.guard, which sees raw headers, not a Request)."""
    try:
        morsel = SimpleCookie(cookie_header).get(COOKIE)
    except CookieError:
        morsel = None
    if morsel is not None and morsel.value in LANGS:
        return morsel.value
    return from_accept_language(accept_language)


def language(request: Request) -> str:
    """The language this request's page is shown in: the switch's cookie, else the browser's."""
    chosen = request.cookies.get(COOKIE, "")
    if chosen in LANGS:
        return chosen
    return from_accept_language(request.headers.get("accept-language", ""))


def translate(lang: str, text: str) -> str:
    """`text` (English) in `lang`: itself in English, or where the catalog has no entry."""
    if lang == DEFAULT:
        return text
    return catalog().get(text, text)


def page_catalog(lang: str) -> dict[str, str] | None:
    """What the page inlines for static/i18n.js: the catalog, or None for English."""
    return None if lang == DEFAULT else catalog()


def context(request: Request) -> dict[str, Any]:
    """Jinja2Templates' context processor: every template knows its language."""
    lang = language(request)
    return {"lang": lang, "i18n_catalog": page_catalog(lang)}


@pass_context
def _gettext(ctx: Context, text: str) -> str:
    return translate(str(ctx.get("lang") or DEFAULT), text)


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    return _gettext(ctx, singular if n == 1 else plural)


def install(env: Environment) -> Environment:
    """jinja2's i18n extension on `env`, translating into the context's `lang`."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True)
    return env
