"""Issue 23, item 3: errors a person can read.

- A page that does not exist (`/runs/99999`, `/nope`) opened in a browser is a page in the
  app's look and the browser's language, with the way back (app/web/error_pages.py,
  templates/error.html); the API and clients that do not ask for HTML get the JSON of
  docs/api.md as before. The guard's refusals of a browser's page (a Host that is not the
  server's name, a change from another site) are the same page.
- A 422 says its `msg` in the request's language (app/web/invalid_input.py): every param of
  every lesson, given a value out of its bounds or of the wrong type, is told in Chinese
  with no English word but code names, and names its bound; the English stays pydantic's.

Real server on 127.0.0.1, real Chromium for the pages; nothing waits for a fixed time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from browser import PageErrors, screenshot
from conftest import Server
from playwright.sync_api import Browser, BrowserContext, Page
from pydantic import TypeAdapter, ValidationError
from test_i18n import (
    VISIBLE_INTERFACE_TEXT,
    english_left,
    english_words,
    new_page,
)

from procscope.experiments.spec import COMMON_PARAMS, Param
from procscope.live import catalog
from procscope.web.invalid_input import MESSAGES

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def open_error(browser: Browser, made: list[BrowserContext], url: str, locale: str,
               **context: Any) -> tuple[Page, PageErrors, int]:
    page, errors = new_page(browser, made, locale, **context)
    answer = page.goto(url)
    assert answer is not None
    page.wait_for_selector("[data-testid=error-page]")
    return page, errors, answer.status


def not_the_page_itself(messages: list[str]) -> list[str]:
    """Chromium logs the page's own status (the 404 it was asked to show); nothing else may
    complain."""
    return [m for m in messages if not re.match(
        r"^console: Failed to load resource: .* status of (404|400) ", m)]


# --- the error page --------------------------------------------------------------------------

def test_a_missing_run_opened_in_an_english_browser_is_a_page_that_leads_back(
        browser: Browser, server: Server, contexts: list[BrowserContext]) -> None:
    page, errors, status = open_error(browser, contexts, server.url + "/runs/99999", "en-US")
    assert status == 404
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "There is nothing here"
    assert page.get_by_test_id("error-detail").inner_text() == "no run '99999'"
    # The app's look: its stylesheet and top bar.
    assert page.locator(".topbar .brand").is_visible()
    assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).display") == "flex"
    screenshot(page, "error-404-en")
    page.get_by_test_id("back-to-dashboard").click()
    page.wait_for_function("window.procscope !== undefined")
    assert page.url == server.url + "/"
    assert not_the_page_itself(errors.messages) == []


def test_an_unknown_page_in_a_chinese_browser_is_chinese_and_its_switch_flips_it(
        browser: Browser, server: Server, contexts: list[BrowserContext]) -> None:
    page, errors, status = open_error(browser, contexts, server.url + "/nope", "zh-CN")
    assert status == 404
    assert page.locator("html").get_attribute("lang") == "zh"
    assert page.locator("h1").inner_text() == "这里什么都没有"
    assert page.get_by_test_id("back-to-dashboard").inner_text() == "← 回到主页"
    left = english_left(page.evaluate(VISIBLE_INTERFACE_TEXT))
    assert left == [], f"English interface text on the Chinese error page: {left}"
    screenshot(page, "error-404-zh")
    # A missing run: its detail in Chinese too.
    page.goto(server.url + "/runs/99999")
    assert page.get_by_test_id("error-detail").inner_text() == "没有运行 '99999'"
    # The switch, as on every page: the cookie, and the same address again in English.
    with page.expect_event("load"):
        page.click(".lang-switch [data-lang=en]")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.url == server.url + "/runs/99999"
    assert page.locator("h1").inner_text() == "There is nothing here"
    assert not_the_page_itself(errors.messages) == []


def test_the_error_page_fits_a_phone(browser: Browser, server: Server,
                                     contexts: list[BrowserContext]) -> None:
    page, errors, _ = open_error(browser, contexts, server.url + "/runs/99999", "zh-CN",
                                 viewport={"width": 390, "height": 844}, has_touch=True,
                                 is_mobile=True, device_scale_factor=2)
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => {
      const r = e.getBoundingClientRect();
      return e.checkVisibility() && (r.right > innerWidth + 1 || r.left < -1);
    }).map(e => e.tagName + '.' + e.className)""")
    assert wide == []
    assert page.get_by_test_id("back-to-dashboard").is_visible()
    screenshot(page, "error-404-zh-phone")
    assert not_the_page_itself(errors.messages) == []


def test_the_api_and_clients_that_do_not_ask_for_html_keep_the_json(
        client: httpx.Client) -> None:
    # curl's Accept is */*: the JSON of docs/api.md, for a page's path too.
    run = client.get("/runs/99999")
    assert run.status_code == 404
    assert run.json() == {"detail": "no run '99999'",
                          "i18n": {"key": "no run %(run)s", "values": {"run": "'99999'"}}}
    nope = client.get("/nope")
    assert (nope.status_code, nope.json()) == (404, {"detail": "Not Found"})
    # The API is JSON even to a browser's Accept.
    api = client.get("/api/runs/99999", headers=HTML | {"Accept-Language": "zh-CN"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/json"
    assert api.json()["detail"] == "no run '99999'"
    page = client.get("/runs/99999", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-testid="error-page"' in page.text


def test_the_guards_refusals_of_a_browsers_page_are_the_page_and_json_for_the_api(
        client: httpx.Client) -> None:
    # A Host that is not this server's name (DNS rebinding, or a name the server was not
    # started with): the page says so in the browser's language; the API's JSON stays.
    zh = client.get("/", headers=HTML | {"Host": "elsewhere.example",
                                         "Accept-Language": "zh-CN"})
    assert zh.status_code == 400 and zh.headers["content-type"].startswith("text/html")
    assert '<html lang="zh">' in zh.text and "不是这台服务器的名字" in zh.text
    api = client.get("/api/runs", headers=HTML | {"Host": "elsewhere.example"})
    assert api.status_code == 400
    assert api.json() == {"detail": "Host 'elsewhere.example' is not this server's name",
                          "i18n": {"key": "Host %(host)s is not this server's name",
                                   "values": {"host": "'elsewhere.example'"}}}
    # A form posted from another site: the page for the browser, JSON for a script.
    posted = client.post("/", headers=HTML | {"Sec-Fetch-Site": "cross-site"})
    assert posted.status_code == 403 and "This is not allowed" in posted.text
    scripted = client.post("/api/runs", headers={"Sec-Fetch-Site": "cross-site"})
    assert scripted.json() == {"detail": "cross-site requests may not change anything"}


# --- a 422 in the request's language ---------------------------------------------------------

@dataclass
class Case:
    """A body POST /api/runs refuses, the error pydantic gives for it, and the words (its
    bound, its choices) the message must name in any language."""

    body: Any
    type: str
    names: tuple[str, ...] = ()


def shown(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def bad_values(p: Param) -> list[tuple[Any, str, tuple[str, ...]]]:
    """(value, pydantic's error type, what the message names) for one param's kind."""
    out: list[tuple[Any, str, tuple[str, ...]]] = []
    default = p.default
    if p.choices is not None:
        return [("nope", "literal_error", p.choices), (5, "literal_error", p.choices)]
    if isinstance(default, bool):
        return [("maybe", "bool_parsing", ()), (None, "bool_type", ())]
    if isinstance(default, list):
        if p.min_items:
            out.append(([], "too_short", (str(p.min_items),)))
        if p.max_items is not None:
            out.append(([p.ge or 0] * (p.max_items + 1), "too_long", (str(p.max_items),)))
        if p.ge is not None:
            out.append(([p.ge - 1], "greater_than_equal", (shown(p.ge),)))
        if p.le is not None:
            out.append(([p.le + 1], "less_than_equal", (shown(p.le),)))
        return [*out, (["x"], "float_parsing", ()), ([None], "float_type", ()),
                (5, "list_type", ())]
    if p.ge is not None:
        out.append((p.ge - 1, "greater_than_equal", (shown(p.ge),)))
    if p.le is not None:
        out.append((p.le + 1, "less_than_equal", (shown(p.le),)))
    if isinstance(default, int):
        return [*out, ("x", "int_parsing", ()), (1.5, "int_from_float", ()),
                (None, "int_type", ())]
    return [*out, ("x", "float_parsing", ()), (None, "float_type", ())]


def cases() -> list[Case]:
    out = []
    for spec in catalog.SPECS.values():
        for name, p in {**spec.params, **COMMON_PARAMS}.items():
            kinds = bad_values(p)
            assert kinds, f"{spec.id}.{name}: no bad value for its kind"
            for value, kind, names in kinds:
                out.append(Case({"experiment": spec.id, "params": {name: value}}, kind, names))
        out.append(Case({"experiment": spec.id, "params": {"no_such_param": 1}},
                        "extra_forbidden"))
    tags = tuple(catalog.SPECS)
    return [*out,
            Case({"experiment": "no_such_lesson"}, "union_tag_invalid", tags),
            Case({"params": {}}, "union_tag_not_found", ("experiment",)),
            Case({"experiment": "join", "params": 5}, "model_attributes_type"),
            Case([], "model_attributes_type"),
            Case({"experiment": "join", "extra": 1}, "extra_forbidden")]


def pydantic_says(body: Any) -> list[dict[str, Any]]:
    """What pydantic itself says of the body, in English (the reference for curl's msg),
    validating as FastAPI does (from_attributes)."""
    try:
        TypeAdapter(catalog.RunRequest).validate_python(body, from_attributes=True)
    except ValidationError as e:
        return [dict(err) for err in e.errors(include_url=False)]
    raise AssertionError(f"{body!r} is valid")


def english_in(text: str) -> list[str]:
    """The English words of a message, less what it quotes (a choice, a lesson's id)."""
    return english_words(re.sub(r"'[^']*'", " ", text))


@pytest.fixture
def same_catalogue(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A client of a server whose catalogue is this process's (catalog.SPECS, the reference
    the refusals are checked against): with `fails` and `flood` where this process was
    given PROCSCOPE_SELFTEST before it imported the catalogue (importing `bench`, as
    tests/test_bench_viewers.py does, sets it), without them otherwise."""
    name = "selftest_server" if "fails" in catalog.SPECS else "server"
    server: Server = request.getfixturevalue(name)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_every_param_of_every_lesson_refused_is_said_in_chinese_naming_its_bound(
        same_catalogue: httpx.Client) -> None:
    client = same_catalogue
    keys = set()
    for case in cases():
        zh = client.post("/api/runs", json=case.body, headers={"Accept-Language": "zh-CN"})
        en = client.post("/api/runs", json=case.body)
        assert zh.status_code == en.status_code == 422, (case, zh.text)
        [said_zh] = zh.json()["detail"]
        [said_en] = en.json()["detail"]
        [reference] = pydantic_says(case.body)
        # FastAPI's shape: the same type and loc in both languages (the loc with "body").
        assert said_zh["type"] == said_en["type"] == case.type == reference["type"], case
        assert said_zh["loc"] == said_en["loc"] == ["body", *reference["loc"]], case
        # English: pydantic's own words, as before; its key filled in says the same (but
        # the choices: "one of", not an "or" that would be English in the Chinese value).
        assert said_en["msg"] == reference["msg"], case
        key, values = said_en["i18n"]["key"], said_en["i18n"]["values"]
        keys.add(key)
        assert said_zh["i18n"] == said_en["i18n"], case
        if case.type != "literal_error":
            assert key % values == reference["msg"], case
        # Chinese: no English word but code names, and every bound or choice named.
        msg = said_zh["msg"]
        assert CJK.search(msg) and english_in(msg) == [], (case, msg)
        for name in case.names:
            assert name in msg, (case, msg)
    # Every message the module knows is one a lesson's request can meet: but for the body's
    # own shape (JSON, a missing body: the next test), and a list's count in the number no
    # lesson's bounds have (join's durations: 1 to 10 items).
    assert set(MESSAGES.values()) - keys == {MESSAGES[k] for k in (
        "json_invalid", "missing", "too_short", "too_long.one")}


def test_the_bodys_own_shape_and_other_routes_are_said_in_chinese_too(
        client: httpx.Client) -> None:
    zh = {"Accept-Language": "zh-CN,zh;q=0.9", "Content-Type": "application/json"}
    for content, kind in ((b"{not json", "json_invalid"), (b"", "missing")):
        answer = client.post("/api/runs", content=content, headers=zh)
        assert answer.status_code == 422
        [item] = answer.json()["detail"]
        assert item["type"] == kind and CJK.search(item["msg"]), item
        assert english_in(item["msg"]) == [], item
    # A query parameter (a stream's ?after=) and a What-if body (its pid, its signal).
    after = client.get("/api/runs/1/events.ndjson", params={"after": -1}, headers=zh)
    [item] = after.json()["detail"]
    assert (item["type"], item["loc"], item["msg"]) == \
        ("greater_than_equal", ["query", "after"], "应大于或等于 0")
    signal = client.post("/api/runs/1/signal", json={"pid": "x", "signal": "SIGFOO"},
                         headers=zh)
    by_type = {item["type"]: item["msg"] for item in signal.json()["detail"]}
    assert by_type == {"int_parsing": "应为整数：这个字符串不能解析为整数",
                       "literal_error": "应为以下之一：'SIGKILL', 'SIGSTOP', 'SIGCONT'"}
    # The switch's cookie chooses as on the page: English wins over a Chinese browser.
    cookie = client.post("/api/runs", json={"experiment": "join", "params": {"join": None}},
                         headers={**zh, "Cookie": "procscope_lang=en"})
    assert cookie.json()["detail"][0]["msg"] == "Input should be a valid boolean"


def test_a_refused_run_on_the_chinese_page_is_said_in_chinese(
        browser: Browser, server: Server, contexts: list[BrowserContext]) -> None:
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    contexts.append(ctx)
    page = ctx.new_page()
    errors = PageErrors()
    errors.watch(page)
    page.goto(server.url + "/?experiment=ticket_rush")
    page.wait_for_function("window.procscope !== undefined")
    page.wait_for_selector("#params-form[data-experiment=ticket_rush]")
    # The form checks its bounds itself; a form older than the server's bounds (a page
    # left open across an upgrade) does not: the server's 422 is what the page shows.
    page.locator("#param-read_delay").evaluate("e => e.removeAttribute('max')")
    page.fill("#param-read_delay", "99")
    page.click("[data-testid=start-run]")
    box = page.locator("#params-form .form-error")
    box.wait_for(state="visible")
    assert box.inner_text() == "read_delay: 应小于或等于 5"
    screenshot(page, "error-422-zh")
    refused = re.compile(r"^console: Failed to load resource: .* status of 422 ")
    assert [m for m in errors.messages if not refused.match(m)] == []
