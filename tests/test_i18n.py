"""Issue 13, item 7: the interface in English and Chinese, chosen by the browser's language,
with a switch that sticks (app/i18n.py, static/i18n.js, static/i18n.zh.json); the exported
replay too, chosen by its reader's browser when the file is opened from disk.

Real Chromium contexts with a locale (which sets both navigator.languages and the
Accept-Language the server reads) against a real server on 127.0.0.1. The Chinese page is
checked against the English catalog itself: every English string of the interface that
has a translation must be absent from the visible text once a run has ended, so a string
left untranslated (or built in English somewhere new) fails the test. Text that is not
interface text says so in the page: the lesson's English words carry lang="en", code,
identifiers and program output translate="no"; those are left out of the check.

Nothing waits for a fixed time: every wait is for the condition the assertion needs.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import PageErrors, open_offline, screenshot
from conftest import Server, read_events
from playwright.sync_api import Browser, BrowserContext, Page
from test_page import choose, wait_final

CATALOG = Path(__file__).resolve().parent.parent / "static" / "i18n.zh.json"

# The page's visible text, node by node, without what declares itself not interface text.
VISIBLE_INTERFACE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || !node.textContent.trim()) continue;
    if (el.closest("script, style, template, [lang=en], [translate=no]")) continue;
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
    if (el.closest("details:not([open]) > :not(summary)")) continue;
    out.push(node.textContent);
  }
  for (const el of document.querySelectorAll("[title], [aria-label], [placeholder]")) {
    if (el.closest("[lang=en], [translate=no], template")) continue;
    if (!el.checkVisibility()) continue;
    for (const a of ["title", "aria-label", "placeholder"]) {
      if (a === "title" && el.dataset.titleLang === "en") continue; // the lesson's words
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  return out;
}"""


ROOT = Path(__file__).resolve().parent.parent
# `_("...")` in the templates, `t("...")` in the browser's modules: the interface's strings.
TEMPLATE_MSGID = re.compile(r'\b_\(\s*"((?:[^"\\]|\\.)*)"')
SCRIPT_MSGID = re.compile(r'(?<![\w.])t\(\s*"((?:[^"\\]|\\.)*)"')
# The strings that reach _() / t() as values, not literals: run statuses (runs.html,
# run_panel.js), the tooltip's row keys (hover.js, shown by timeline_input.js), the
# What-if buttons (what_if.js), the question's units (a spec's Prediction.unit).
DYNAMIC = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out", "interrupted",
           "kind", "process", "pid", "ppid", "core", "time", "seq", "data", "role", "started",
           "exited", "zombie for", "kernel state", "how", "from", "to", "on the core", "ended",
           "lasted", "held by", "waiting", "depth", "sold", "stock", "Kill", "Pause", "Resume",
           "tickets", "s")


def server_messages() -> list[str]:
    """The keys of the server's refusals the page shows: `said("...")` in app/ (app/live/said.py),
    read with ast, so that adjacent literals are joined as Python joins them; and a 422's
    messages, by pydantic's error type (app/web/invalid_input.py)."""
    from procscope.web.invalid_input import MESSAGES

    found: dict[str, None] = dict.fromkeys(MESSAGES.values())
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id == "said":
                assert node.args and isinstance(node.args[0], ast.Constant) and \
                    isinstance(node.args[0].value, str), f"{path}:{node.lineno}: said(literal)"
                found[node.args[0].value] = None
    return list(found)


def english_catalog() -> list[str]:
    """Every English string of the interface, as the source writes it (not as the Chinese
    catalog lists it: a string missing there must still be looked for)."""
    found: dict[str, None] = dict.fromkeys(DYNAMIC)
    found.update(dict.fromkeys(server_messages()))
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for m in TEMPLATE_MSGID.finditer(path.read_text(encoding="utf-8")):
            found[json.loads(f'"{m.group(1)}"')] = None
    for path in sorted((ROOT / "static").glob("*.js")):
        if ".min." in path.name:
            continue
        for m in SCRIPT_MSGID.finditer(path.read_text(encoding="utf-8")):
            found[json.loads(f'"{m.group(1)}"')] = None
    return list(found)


def chinese_catalog() -> dict[str, str]:
    data: dict[str, str] = json.loads(CATALOG.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("//")}


def english_fragments() -> list[str]:
    """The English catalog's words: each string, cut at its placeholders, the pieces with
    at least one word of three letters or more that its translation does not keep."""
    chinese_of = chinese_catalog()
    pieces: set[str] = set()
    for english in english_catalog():
        chinese = chinese_of.get(english, "")
        if chinese == english:
            continue
        for piece in re.split(r"%\(\w+\)s", english.replace("%%", "%")):
            piece = piece.strip(" ·:,.()→")
            # A word its translation keeps too (CPU, pid, SIGKILL) is not English to check.
            if re.search(r"[A-Za-z]{3,}", piece) and piece not in chinese:
                pieces.add(piece)
    return sorted(pieces, key=len, reverse=True)


def english_left(texts: list[str]) -> list[tuple[str, str]]:
    """(fragment, text) for each English interface fragment found in the texts (whole
    words, case as written: `lock`, a param's name, is not `Lock`, the track's label)."""
    found = []
    for fragment in english_fragments():
        pattern = re.compile(rf"(?<![A-Za-z_.]){re.escape(fragment)}(?![A-Za-z_]|\.\w)")
        for text in texts:
            if pattern.search(text):
                found.append((fragment, text))
                break
    return found


# Words Chinese text keeps in Latin letters: names in the code (classes, methods, event
# fields), the kernel's and the tools' terms, and units (ms, Hz, as Chinese interfaces write
# them). Anything else in Latin letters in a Chinese text is English left untranslated.
CODE_NAMES = frozenset({
    "CPU", "GIL", "pid", "ppid", "Lock", "Queue", "JoinableQueue", "Pool", "Executor",
    "Event", "Condition", "Barrier", "Semaphore",
    "Full", "Empty", "SIGTERM", "SIGKILL", "SIGSTOP", "SIGCONT", "BrokenProcessPool",
    "true", "false", "procscope", "multiprocessing", "subreaper", "JSON", "ms", "Hz",
    "join", "put", "get", "kind", "seq", "data", "params", "Traceback", "Perfetto",
    "speedscope", "token", "Authorization", "Bearer", "DELETE",
    # the command `procscope trace` (after "procscope", itself a name above)
    "trace"})
# A name or a call as code writes it: `join()`, `q.put('x', timeout=0.1)`, `queue.Full`.
CODE_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\([^()]*\))?")


def english_words(text: str, verbatim: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The English words of a Chinese text: its Latin words, less `verbatim` (data shown as
    it is: a process's name, a command line; taken out first, as whole words), code (with a
    dot, an underscore, a digit or a call's parentheses; a flag and its value, a path, a
    query: `--cpu-lanes sampled`, `/api/runs`, `?token=`) and CODE_NAMES."""
    for data in sorted(verbatim, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(data)}(?![A-Za-z0-9_])", " ", text)
    words = []
    for match in CODE_TOKEN.finditer(text):
        token = match.group()
        before, after = text[match.start() - 1:match.start()], text[match.end():match.end() + 1]
        if re.search(r"[._(0-9]", token) or len(token) < 2 or token in CODE_NAMES or \
                before in ("-", "/", "?", "<") or after in ("/", "=", ">", "-") or \
                re.search(r"--[\w-]+ $", text[:match.start()]):
            continue
        words.append(token)
    return words


def test_no_chinese_entry_of_the_catalog_keeps_english_words() -> None:
    # A half-translation written into the catalog itself ("在 join() 中等待 the queue").
    left = {english: words for english, chinese in chinese_catalog().items()
            if (words := english_words(re.sub(r"%\(\w+\)s", " ", chinese)))}
    assert left == {}
    assert english_words("在 q.put('fourth', timeout=0.1) 中：等待 room in the queue → "
                         "queue.Full") == ["room", "in", "the", "queue"]
    assert english_words("在 join() 中等待 worker-1；Lock 和 CPU 0", {"worker-1"}) == []
    assert english_words("启动时不要加 --cpu-lanes sampled 或 the flag") == ["the", "flag"]


def new_page(browser: Browser, made: list[BrowserContext], locale: str,
             **context: Any) -> tuple[Page, PageErrors]:
    """A page in a context of its own (closed by `contexts`), in a browser of `locale`,
    1280x800 unless `context` says otherwise, its errors watched."""
    ctx = browser.new_context(**({"locale": locale, "viewport": {"width": 1280, "height": 800}}
                                 | context))
    made.append(ctx)
    page = ctx.new_page()
    errors = PageErrors()
    errors.watch(page)
    return page, errors


def open_page(browser: Browser, made: list[BrowserContext], url: str, locale: str,
              **context: Any) -> tuple[Page, PageErrors]:
    page, errors = new_page(browser, made, locale, **context)
    page.goto(url)
    page.wait_for_function("window.procscope !== undefined")
    return page, errors


def run_ticket_rush(page: Page) -> str:
    choose(page, "ticket_rush", n=6, time_scale=0.05)
    page.click("[data-testid=start-run]")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    wait_final(page)
    assert page.locator("[data-testid=run-status]").get_attribute("data-status") == "succeeded"
    return page.url.rsplit("/", 1)[1]


def test_every_interface_string_has_its_chinese_and_the_catalog_nothing_else() -> None:
    english = english_catalog()
    chinese = chinese_catalog()
    assert [s for s in english if s not in chinese] == []
    assert [s for s in chinese if s not in english] == []  # no stale entry
    for s in english:  # the same values filled in, and a % only as %%
        values = re.compile(r"%\(\w+\)s")
        assert sorted(values.findall(s)) == sorted(values.findall(chinese[s])), s
        assert "%" not in re.sub(r"%\(\w+\)s|%%", "", chinese[s]), s


def test_every_lesson_has_its_texts_in_chinese_too() -> None:
    from procscope.experiments.spec import COMMON_PARAMS
    from procscope.live import catalog

    lessons = [s for s in catalog.SPECS.values() if s.id not in ("fails", "flood")]
    assert [s.id for s in lessons if not (s.title_zh and s.summary_zh)] == []
    assert [f"{s.id}.{n}" for s in lessons for n, p in {**s.params, **COMMON_PARAMS}.items()
            if not p.description_zh] == []
    # A key moment whose label is only the result's own data ("{result.order}") needs none.
    assert [f"{s.id}: {m.label}" for s in lessons for m in s.key_moments
            if not m.label_zh and not re.fullmatch(r"\{[\w.]+\}", m.label)] == []


def test_the_language_is_the_cookie_else_the_browsers_first_known_one() -> None:
    from procscope import i18n

    assert i18n.from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert i18n.from_accept_language("zh-TW") == "zh"
    assert i18n.from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert i18n.from_accept_language("fr-FR,zh;q=0.5,en;q=0.3") == "zh"  # the best it knows
    assert i18n.from_accept_language("en;q=0.2, zh;q=0.7") == "zh"  # by q, not by order
    assert i18n.from_accept_language("zh;q=0, en") == "en"  # q=0: not acceptable
    assert i18n.from_accept_language("") == "en"
    assert i18n.from_accept_language("de, *;q=0.1, garbage;;q=x") == "en"
    assert i18n.choose("procscope_lang=en; other=1", "zh-CN") == "en"
    assert i18n.choose("procscope_lang=zh", "en-US") == "zh"
    assert i18n.choose("procscope_lang=fr", "zh-CN") == "zh"  # not a language we have
    assert i18n.choose('bad"cookie', "zh-CN") == "zh"


def test_the_catalog_cuts_into_words_that_the_check_would_find() -> None:
    # The check is only as good as its fragments: the strings the page shows most are in.
    fragments = english_fragments()
    for english in ("Parameters", "Legend", "Console", "Key moment", "Download this run",
                    "replayed from the log", "prints in arrival order", "succeeded"):
        assert english in fragments
    assert english_left(["参数 · 图例", "lock 开 对比 lock 关"]) == []
    assert {f for f, _ in english_left(["43 events · 0 dropped"])} == {"events", "dropped"}


def test_a_chinese_browser_gets_the_chinese_interface_with_no_english_string_of_it(
        browser: Browser, server: Server, contexts: list[BrowserContext]) -> None:
    page, errors = open_page(browser, contexts, server.url + "/?experiment=ticket_rush", "zh-CN")
    assert page.evaluate("navigator.languages[0]") == "zh-CN"
    assert page.locator("html").get_attribute("lang") == "zh"
    assert page.locator("[data-testid=start-run]").inner_text().strip() == "▶ 运行"
    run_ticket_rush(page)
    assert page.locator("[data-testid=run-status]").inner_text() == "成功"
    # The outcome in Chinese (the run's outcome_zh, from the lesson's spec).
    assert page.locator("[data-testid=result] .outcome").inner_text() == \
        "卖出 1 张票，库存 1 张——没有超卖。"
    # The whole page once the run has ended: result, console, stats, legend, run list.
    page.wait_for_selector("#run-list a[data-run]")
    left = english_left(page.evaluate(VISIBLE_INTERFACE_TEXT))
    assert left == [], f"English interface text on the Chinese page: {left}"
    # The lesson's own Chinese words come first; the English ones are marked as such. Its
    # title, in the select, the sidebar and the run's header, is its Chinese one.
    assert page.locator(".lesson p").first.get_attribute("lang") == "zh"
    assert page.locator(".lesson-head h1").inner_text() == "抢票：加锁才能保证正确"
    assert page.locator("label[for=param-n] small").inner_text() == "买家（进程）个数 (1–500)"
    assert "抢票：加锁才能保证正确" in page.locator(".run-name").inner_text()
    assert page.locator("[data-testid=experiment-select] option:checked").inner_text() == \
        "抢票：加锁才能保证正确"
    # The canvas labels are the interface's too: the lock track's label, the end line.
    drawn = page.evaluate("""() => {
      const seen = [];
      const proto = CanvasRenderingContext2D.prototype, fill = proto.fillText;
      proto.fillText = function (text, ...rest) {
        seen.push(String(text));
        return fill.call(this, text, ...rest);
      };
      procscope.panels[0].draw(procscope.view, Infinity, procscope.theme);
      proto.fillText = fill;
      return seen;
    }""")
    assert "锁" in drawn and "已售" in drawn, drawn
    # The lesson's key moments are labelled in Chinese too (its spec's label_zh).
    assert "一次只有一个买家：锁从一个买家传给下一个" in drawn
    assert "库存 1 张，卖出 1 张" in drawn
    # Less the lanes' process names (the lesson's own).
    names = set(page.evaluate("procscope.panels[0].model.rows().map(l => l.name)"))
    assert english_left([d for d in drawn if d not in names]) == []
    assert errors.messages == []
    screenshot(page, "i18n-zh-whole-run")


def test_an_english_browser_gets_english(browser: Browser, server: Server,
                                         contexts: list[BrowserContext]) -> None:
    page, errors = open_page(browser, contexts, server.url + "/", "en-US")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#i18n-catalog").count() == 0
    assert page.locator("[data-testid=start-run]").inner_text().strip() == "▶ Run"
    assert page.locator("fieldset.params legend").inner_text() == "Parameters"
    assert page.locator(".lang-switch [data-lang=en]").get_attribute("aria-pressed") == "true"
    assert errors.messages == []


def test_the_switch_flips_the_language_keeps_the_run_and_sticks_across_a_reload(
        browser: Browser, server: Server, contexts: list[BrowserContext]) -> None:
    page, errors = open_page(browser, contexts, server.url + "/?experiment=ticket_rush", "zh-CN")
    run_id = run_ticket_rush(page)
    # A window of the user's own on the finished run: it must survive the switch.
    page.evaluate("procscope.view.focus(0.01, 0.05); procscope.redraw()")
    page.click(".lang-switch [data-lang=en]")
    page.wait_for_function("document.documentElement.lang === 'en' && window.procscope")
    assert page.url.endswith(f"/runs/{run_id}")
    assert wait_final(page) == ["succeeded"]
    page.wait_for_function("Math.abs(procscope.view.t0 - 0.01) < 1e-9 && "
                           "Math.abs(procscope.view.t1 - 0.05) < 1e-9")
    assert page.locator("fieldset.params legend").inner_text() == "Parameters"
    # The cookie: a reload, and a page the server renders anew, stay English.
    page.reload()
    page.wait_for_function("window.procscope")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("[data-testid=start-run]").inner_text().strip() == "▶ Run"
    form = page.context.request.get(f"{server.url}/partials/form/join")
    assert "Parameters" in form.text() and "参数" not in form.text()
    # And back to Chinese.
    page.click(".lang-switch [data-lang=zh]")
    page.wait_for_function("document.documentElement.lang === 'zh' && window.procscope")
    assert page.url.endswith(f"/runs/{run_id}")
    assert wait_final(page) == ["成功"]
    assert errors.messages == []


def test_screenshots_of_the_chinese_page_presenter_and_phone(
        browser: Browser, server: Server, contexts: list[BrowserContext]) -> None:
    page, errors = open_page(browser, contexts, server.url + "/?experiment=ticket_rush", "zh-CN")
    run_id = run_ticket_rush(page)
    page.click("#presenter-toggle")
    page.wait_for_function("document.body.classList.contains('presenter')")
    page.evaluate("procscope.redraw()")
    screenshot(page, "i18n-zh-presenter")
    phone, phone_errors = open_page(
        browser, contexts, f"{server.url}/runs/{run_id}", "zh-CN",
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
        device_scale_factor=2)
    assert wait_final(phone) == ["成功"]
    # Nothing of the top bar runs off a phone's screen or out of the bar (no wrapped words).
    overflow = phone.evaluate("""() => {
      const bar = document.querySelector('.topbar').getBoundingClientRect();
      return [...document.querySelectorAll('.topbar > *, .topbar button')].filter(e => {
        if (!e.checkVisibility()) return false;
        const r = e.getBoundingClientRect();
        return r.right > innerWidth + 1 || r.left < -1 || r.top < bar.top - 1 ||
          r.bottom > bar.bottom + 1;
      }).map(e => e.className || e.id || e.textContent);
    }""")
    assert overflow == []
    # The key moments' labels stay inside the phone's narrow plot (cut with "…" if need be).
    fits = phone.evaluate("""() => { const tl = procscope.panels[0].timeline, g = tl.geom;
      return tl.momentPx.map(m => m.lx >= g.gutter && m.lx + m.w <= g.gutter + g.plotW + 0.5); }""")
    assert fits and all(fits), fits
    screenshot(phone, "i18n-zh-phone")
    assert errors.messages == [] and phone_errors.messages == []


def test_the_page_that_says_how_to_get_in_speaks_the_browsers_language(
        browser: Browser, contexts: list[BrowserContext]) -> None:
    # Bound to every interface: a token is in force, and a browser without it is told how
    # to get in (app.web.guard), in its language.
    srv = Server("--host", "0.0.0.0")
    try:
        ctx = browser.new_context(locale="zh-CN")
        contexts.append(ctx)
        page = ctx.new_page()
        answer = page.goto(srv.url + "/")
        assert answer is not None and answer.status == 401
        assert page.locator("html").get_attribute("lang") == "zh"
        assert "令牌" in page.locator("h1").inner_text()
        assert english_left(page.evaluate(VISIBLE_INTERFACE_TEXT)) == []
        # In the app's look (its stylesheet and top bar need no token: /static/).
        assert page.evaluate("getComputedStyle(document.querySelector('.topbar'))"
                             ".display") == "flex"
        screenshot(page, "i18n-zh-token-needed")
        # Its switch sets the cookie, which wins over the browser's languages.
        with page.expect_event("load"):
            page.click(".lang-switch [data-lang=en]")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("h1").inner_text() == "This page needs a link with a token"
        ctx.add_cookies([{"name": "procscope_lang", "value": "zh", "url": srv.url}])
        page.reload()
        assert page.locator("html").get_attribute("lang") == "zh"
    finally:
        srv.stop()


def test_a_chinese_classroom_predicts_and_kills_without_english_on_any_page(
        browser: Browser, contexts: list[BrowserContext]) -> None:
    """The classroom's own strings (the question box, the answers beside the outcome, the
    What-if bar and its note, the student's empty stage) in Chinese, on a server bound to
    every interface (tokens in force), reached over 127.0.0.1: a teacher and two students."""
    from test_classroom import switched, viewer_link, wait_open

    srv = Server("--host", "0.0.0.0", "--max-runs", "4")
    try:
        def join(token: str) -> tuple[Page, PageErrors]:
            page, errors = open_page(browser, contexts, f"{srv.url}/?token={token}", "zh-CN")
            wait_open(page)
            return page, errors

        teacher, teacher_errors = join(srv.token or "")
        students = [join(viewer_link(srv)) for _ in range(2)]
        assert english_left(students[0][0].evaluate(VISIBLE_INTERFACE_TEXT)) == []
        choose(teacher, "ticket_rush", n=6, time_scale=0.05)
        teacher.click("[data-testid=open-question]")
        teacher.wait_for_selector("[data-testid=question]:not([hidden])")
        for i, (page, _) in enumerate(students):
            page.wait_for_selector("[data-testid=prediction-answer]")
            page.fill("[data-testid=prediction-answer]", str(1 + i))
            page.click("[data-testid=prediction-submit]")
            page.wait_for_function(
                "document.querySelector('[data-testid=prediction-yours]').textContent !== ''")
        teacher.wait_for_function(
            "document.querySelector('[data-testid=prediction-count]').dataset.total === '2'")
        for page in (teacher, students[0][0]):  # the open question, asked and answered
            assert english_left(page.evaluate(VISIBLE_INTERFACE_TEXT)) == []
        assert "目前 2 个答案" in teacher.locator("[data-testid=prediction-count]").inner_text()
        teacher.click("[data-testid=start-run]")
        teacher.wait_for_url(re.compile(r"/runs/\d+$"))
        run_id = teacher.url.rsplit("/", 1)[1]
        for page, _ in students:
            switched(page, run_id)
        for page in (teacher, *(p for p, _ in students)):
            wait_final(page)
            assert page.locator("[data-testid=prediction-result]").count() == 1
            left = english_left(page.evaluate(VISIBLE_INTERFACE_TEXT))
            assert left == [], f"English interface text: {left}"
        assert "实际结果" in teacher.locator("[data-testid=prediction-truth]").inner_text()
        teacher.locator("[data-testid=prediction-result]").scroll_into_view_if_needed()
        screenshot(teacher, "i18n-zh-prediction-round")

        # What if? The teacher kills a process of a live run from its lane: the bar and the
        # note say it in Chinese.
        teacher.evaluate("""() => fetch('/api/runs', {method: 'POST',
          headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({experiment: 'ticket_rush',
                                params: {n: 3, lock: true, read_delay: 0.05, write_delay: 5}})})""")
        teacher.wait_for_function("procscope.panels.length === 1 && procscope.panels[0].live",
                                  timeout=20_000)
        live_id = teacher.evaluate("String(procscope.panels[0].run.id)")
        try:
            # A holder that took the Lock under a second ago: it holds it ~5 s more, so the
            # kill lands while it still does, however loaded the machine (test_classroom).
            holder = teacher.wait_for_function("""() => { const m = procscope.panels[0].model;
              const s = m.lock.holds.find(h => h.t1 === null);
              return s && m.now(performance.now()) - s.t0 < 1 ? s.lane.pid : null; }""",
                                               timeout=30_000).json_value()
            # The pick the lane's tap makes (timeline_input.js), for the holder's lane.
            teacher.evaluate("""pid => { const panel = procscope.panels[0];
              panel.timelineEl.dispatchEvent(new CustomEvent('procscope:pick', {bubbles: true,
                detail: {panel, info: {title: '', rows: [['pid', pid]]}}})); }""", holder)
            bar = teacher.locator("[data-testid=what-if]")
            bar.wait_for()
            assert "如果" in bar.inner_text() and "杀死" in bar.inner_text()
            teacher.click("[data-testid=what-if-kill]")
            # The note says what the kill means, in Chinese (whether the holder still held
            # the Lock when the kill landed is test_classroom's to check: here, the words).
            teacher.wait_for_function(
                "document.querySelector('[data-testid=what-if-note]')?.textContent"
                ".includes('SIGKILL')", timeout=30_000)
            note = teacher.locator("[data-testid=what-if-note]").inner_text()
            assert "被杀死" in note, note
            left = english_left(teacher.evaluate(VISIBLE_INTERFACE_TEXT))
            assert left == [], f"English interface text: {left}"
            screenshot(teacher, "i18n-zh-what-if")
        finally:
            cancelled = teacher.context.request.delete(f"{srv.url}/api/runs/{live_id}")
            assert cancelled.ok
        assert teacher_errors.messages == [] and all(e.messages == [] for _, e in students)
    finally:
        srv.stop()


# --- the exported replay: its reader's language, offline (app/history/replay_export.py) --

REPLAY_DRAWN = ("document.querySelector('[data-testid=run-status]')?.dataset.status === "
                "'succeeded' && window.procscope?.panels[0].resultReady")


@pytest.fixture(scope="module")
def replays(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One finished ticket_rush exported twice: by a client with no language (as `procscope
    export --server` asks: the file is made in English) and by a Chinese browser's request."""
    out = tmp_path_factory.mktemp("replays")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        made = http.post("/api/runs", json={"experiment": "ticket_rush",
                                            "params": {"n": 6, "time_scale": 0.05}})
        assert made.status_code == 201, made.text
        run_id = made.json()["id"]
        read_events(http, run_id)
        files = {}
        for name, headers in (("en", {}), ("zh", {"Accept-Language": "zh-CN,zh;q=0.9"})):
            response = http.get(f"/api/runs/{run_id}/replay.html", headers=headers)
            assert response.status_code == 200
            files[name] = out / f"made-{name}.replay.html"
            files[name].write_bytes(response.content)
    return files


def open_replay(browser: Browser, made: list[BrowserContext], path: Path,
                locale: str) -> tuple[Page, PageErrors, list[str]]:
    """The file opened from disk in a browser of `locale`, every other request refused."""
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
    made.append(ctx)
    page = ctx.new_page()
    errors = PageErrors()
    errors.watch(page)
    requested = open_offline(page, path)
    page.wait_for_function(REPLAY_DRAWN, timeout=20_000)
    return page, errors, requested


def switch_replay(page: Page, to: str) -> None:
    """The replay's EN / 中文 switch: the file reloads in the other language."""
    with page.expect_event("load"):
        page.click(f".lang-switch [data-lang={to}]")
    page.wait_for_function(REPLAY_DRAWN, timeout=20_000)


def test_an_exported_replay_opened_by_a_chinese_browser_is_chinese_and_its_switch_flips_it(
        browser: Browser, replays: dict[str, Path], contexts: list[BrowserContext]) -> None:
    # Made by an English client; its reader's browser is Chinese: the reader's language.
    page, errors, requested = open_replay(browser, contexts, replays["en"], "zh-CN")
    assert page.evaluate("navigator.language") == "zh-CN"
    assert page.locator("html").get_attribute("lang") == "zh"
    assert page.get_by_test_id("run-status").inner_text() == "成功"
    assert page.get_by_test_id("result").locator(".outcome").inner_text() == \
        "卖出 1 张票，库存 1 张——没有超卖。"
    assert page.locator(".lesson-head h1").inner_text() == "抢票：加锁才能保证正确"
    assert page.locator(".lesson p").first.get_attribute("lang") == "zh"
    assert page.get_by_role("button", name="▶ 回放").is_visible()
    assert page.title().startswith("运行 ") and page.title().endswith("回放")
    assert page.locator(".lang-switch [data-lang=zh]").get_attribute("aria-pressed") == "true"
    left = english_left(page.evaluate(VISIBLE_INTERFACE_TEXT))
    assert left == [], f"English interface text in the Chinese replay: {left}"
    screenshot(page, "i18n-zh-replay")
    # The switch: English, and it sticks for this browser (a file on disk has no cookie).
    switch_replay(page, "en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_test_id("run-status").inner_text() == "succeeded"
    assert page.get_by_role("button", name="▶ Replay").is_visible()
    assert page.locator(".lang-switch [data-lang=en]").get_attribute("aria-pressed") == "true"
    with page.expect_event("load"):
        page.reload()
    page.wait_for_function(REPLAY_DRAWN, timeout=20_000)
    assert page.get_by_test_id("run-status").inner_text() == "succeeded"
    switch_replay(page, "zh")
    assert page.get_by_test_id("run-status").inner_text() == "成功"
    assert set(requested) == {replays["en"].as_uri()}, requested
    assert errors.messages == []


def test_an_exported_replay_opened_by_an_english_browser_is_english(
        browser: Browser, replays: dict[str, Path], contexts: list[BrowserContext]) -> None:
    # Made by a Chinese browser's request; read in English: the reader's language again.
    page, errors, _ = open_replay(browser, contexts, replays["zh"], "en-US")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#i18n-catalog").count() == 0
    assert page.get_by_test_id("run-status").inner_text() == "succeeded"
    assert page.locator(".lesson-head h1").inner_text() == \
        "The ticket rush: a Lock makes it correct"
    assert page.get_by_role("button", name="▶ Replay").is_visible()
    assert page.locator(".lang-switch [data-lang=en]").get_attribute("aria-pressed") == "true"
    assert errors.messages == []


def test_a_replay_read_in_neither_language_is_in_the_one_it_was_made_in(
        browser: Browser, replays: dict[str, Path], contexts: list[BrowserContext]) -> None:
    # The server made it in its request's language (Accept-Language: zh-CN), shown as it is
    # where the reader's browser prefers neither, and where no script runs.
    html = replays["zh"].read_text(encoding="utf-8")
    assert html.index('<div id="replay-page" data-lang="zh">') < \
        html.index('<template data-replay-lang="en">')
    assert '<html lang="zh">' in html
    page, errors, _ = open_replay(browser, contexts, replays["zh"], "fr-FR")
    assert page.locator("html").get_attribute("lang") == "zh"
    assert page.get_by_test_id("run-status").inner_text() == "成功"
    page2, errors2, _ = open_replay(browser, contexts, replays["en"], "fr-FR")
    assert page2.get_by_test_id("run-status").inner_text() == "succeeded"
    assert errors.messages == [] and errors2.messages == []


# --- the server's refusals on the page (app/live/said.py, static/i18n.js told()) ----------------

def test_a_capped_run_and_a_refused_signal_are_said_in_chinese_and_the_api_stays_english(
        browser: Browser, contexts: list[BrowserContext]) -> None:
    srv = Server("--max-runs", "1")
    live_id = None
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            # One run that lasts (8 buyers, each holding the Lock 3 s: live until it is
            # cancelled at the end, however slow the machine): the cap is reached.
            made = http.post("/api/runs", json={"experiment": "ticket_rush",
                                                "params": {"n": 8, "time_scale": 10}})
            assert made.status_code == 201, made.text
            live_id = made.json()["id"]
            # curl's answer: the English detail as it always was, the page's key beside it.
            refused = http.post("/api/runs", json={"experiment": "ticket_rush", "params": {}})
            assert refused.status_code == 429
            english = "1 runs are live, the cap is 1: wait for one to end or cancel one"
            assert refused.json() == {"detail": english, "i18n": {
                "key": "%(live)s runs are live, the cap is %(cap)s: wait for one to end or "
                       "cancel one", "values": {"live": 1, "cap": 1}}}
            outside = http.post(f"/api/runs/{live_id}/signal",
                                json={"pid": 4_194_000, "signal": "SIGKILL"})
            assert outside.status_code == 422
            [item] = outside.json()["detail"]
            assert item["msg"] == f"pid 4194000 is not a process of run {live_id}"
            assert item["i18n"]["key"] == "pid %(pid)s is not a process of run %(run)s"

        # A Chinese page's Run: the refusal in Chinese, all of it.
        page, errors = open_page(browser, contexts, srv.url + "/?experiment=ticket_rush",
                                 "zh-CN")
        page.click("[data-testid=start-run]")
        box = page.locator("#params-form .form-error")
        box.wait_for(state="visible")
        assert box.inner_text() == ("同时运行的太多了：已有 1 个运行在进行，上限是 1 个："
                                    "请等其中一个结束，或取消一个")
        assert english_left([box.inner_text()]) == []
        # An English page says what the API says.
        en_page, en_errors = open_page(browser, contexts, srv.url + "/?experiment=ticket_rush",
                                       "en-US")
        en_page.click("[data-testid=start-run]")
        en_box = en_page.locator("#params-form .form-error")
        en_box.wait_for(state="visible")
        assert en_box.inner_text() == f"Too many runs at once: {english}"

        # What if… a pid that is not the run's: the 422's words, in Chinese.
        page.goto(f"{srv.url}/runs/{live_id}")
        page.wait_for_function("window.procscope?.panels.length === 1")
        page.wait_for_function(
            "document.querySelector('[data-testid=run-status]')?.dataset.status === 'running'")
        page.evaluate("""pid => { const panel = procscope.panels[0];
          panel.timelineEl.dispatchEvent(new CustomEvent('procscope:pick', {bubbles: true,
            detail: {panel, info: {title: '', rows: [['pid', pid]]}}})); }""", 4_194_000)
        page.locator("[data-testid=what-if]").wait_for()
        page.click("[data-testid=what-if-kill]")
        page.wait_for_function(
            "document.querySelector('[data-testid=what-if] .error')?.textContent !== ''")
        said = page.locator("[data-testid=what-if] .error").inner_text()
        assert said == f"pid 4194000 不是运行 {live_id} 的进程", said
        screenshot(page, "i18n-zh-refused-signal")
        # Chromium logs each refused request (the 429s, the 422); nothing else may complain.
        refusals = re.compile(r"^console: Failed to load resource: .* status of (429|422) ")
        assert [m for m in errors.messages + en_errors.messages if not refusals.match(m)] == []
    finally:
        if live_id is not None:
            httpx.delete(f"{srv.url}/api/runs/{live_id}", timeout=60)
        srv.stop()
