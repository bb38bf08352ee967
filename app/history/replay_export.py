"""A run as one self-contained HTML file (`replay.html`) that replays it from disk, offline.

Runs in the server (`GET /api/runs/{id}/replay.html`) and in `procscope export`. The file
holds the run's JSON, its events, its lesson (title, text, code), the page's stylesheet,
the page's own markup for a run (the templates and the play bar, cut from the rendered
dashboard, so that what the modules look up is there) and the page's own browser modules,
with static/replay.js as the entry that feeds the inlined events to a RunPanel instead of
a stream. The replay draws what the live page draws because it is the same code.

How the modules load without a network and without a build step: the browser code is ES
modules importing each other by relative path (`import ... from "./run_model.js"`). A
module loaded from a blob: or data: URL cannot resolve a relative specifier (such URLs are
not hierarchical), and an import map would have to be written before the page's first
module runs. So the server walks the import graph from replay.js (a regular expression over
the `from "./x.js"` / `import "./x.js"` specifiers: the modules are our own, written in one
style), rewrites each specifier into a placeholder, and the file's loader (a few lines,
templates/replay.html) turns the modules into blob: URLs in dependency order, leaves first,
each placeholder replaced by its dependency's blob URL, then imports replay.js. No node, no
bundler: the file is made at request time by the Python server (a bundler such as esbuild
would need node, or its binary, on every server).

The interface's language is the reader's, chosen when the file is opened, offline: the
file holds the page's markup (the sidebar, the play bar, the run templates, the legend)
rendered through app.i18n in each of its languages, and the Chinese one with the catalog
static/i18n.js reads, as a live page inlines it. One is shown, the language the file was
made in (the request's, as for a page: the switch's cookie, else Accept-Language; English
for `procscope export`); the other waits in a <template>, and static/i18n.js, the first
module the loader runs, swaps it in when the reader's browser prefers it (the replay's
own EN / 中文 switch, else navigator.languages). Rendered twice, not translated in the
browser, so that the replay's words are the server's own, as on a live page; it costs a
few KB beside ~170 KB of code and style, and the catalog (~20 KB) once.

Inlined JSON is safe inside <script>: every `<` is written `\\u003c` (in JSON a `<` can
only be inside a string, where the escape means the same character).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from procscope import i18n
from procscope.live.catalog import page_facts
from procscope.live.run_record import program_view
from procscope.resources import STATIC, TEMPLATES

ENTRY = "replay.js"
PLACEHOLDER = "procscope-module:"  # + a module's file name, in quotes, in a rewritten source

# `from "./x.js"`, `import "./x.js"`, `import("./x.js")`: the specifier is group 3.
IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])\./([A-Za-z0-9_.\-]+\.js)\2""")

# The templates use jinja2's i18n extension (app.i18n), translating into the render's `lang`.
_env = i18n.install(Environment(loader=FileSystemLoader(TEMPLATES),
                                autoescape=select_autoescape(), keep_trailing_newline=True))


def safe_json(value: Any) -> str:
    """JSON that can stand inside a <script> element as it is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def events_json(ndjson: bytes) -> str:
    """The run's NDJSON lines as one JSON array, as they are (their bytes kept)."""
    lines = [line for line in ndjson.split(b"\n") if line.strip()]
    return (b"[" + b",".join(lines) + b"]").decode("utf-8").replace("<", "\\u003c")


def modules(entry: str = ENTRY, static: Path = STATIC) -> list[tuple[str, str]]:
    """The modules `entry` needs, leaves first (entry last), each source with its imports
    rewritten into placeholders. ValueError on an import cycle or a missing module."""
    order: list[str] = []
    sources: dict[str, str] = {}
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in sources:
            return
        if name in visiting:
            raise ValueError(f"static/: an import cycle {' -> '.join([*visiting, name])}; "
                             "the replay loads modules leaves first and cannot load a cycle")
        path = static / name
        if not path.is_file():
            raise ValueError(f"static/{visiting[-1] if visiting else '?'} imports ./{name}, "
                             "which is not there")
        visiting.append(name)
        text = path.read_text(encoding="utf-8")
        for match in IMPORT.finditer(text):
            visit(match.group(3))
        visiting.pop()
        sources[name] = IMPORT.sub(
            lambda m: f"{m.group(1)}{m.group(2)}{PLACEHOLDER}{m.group(3)}{m.group(2)}", text)
        order.append(name)

    visit(entry)
    return [(name, sources[name]) for name in order]


def _element(html: str, start: str, tag: str) -> str:
    """The element of `html` whose opening tag begins with `start`, to its matching close."""
    at = html.find(start)
    if at < 0:
        raise ValueError(f"the dashboard's markup has no {start!r}: the replay needs it")
    depth = 0
    pattern = re.compile(rf"<{tag}\b|</{tag}>")
    for match in pattern.finditer(html, at):
        depth += 1 if match.group(0) != f"</{tag}>" else -1
        if depth == 0:
            return html[at:match.end()]
    raise ValueError(f"the dashboard's {start!r} is not closed")


def page_parts(experiments: list[dict[str, Any]], chosen: str,
               run: dict[str, Any], lang: str = i18n.DEFAULT) -> dict[str, str]:
    """The dashboard's own markup for one run: the run templates, the play bar, the legend,
    the language switch, cut from templates/index.html as the page renders it in `lang`."""
    html = _env.get_template("index.html").render(
        experiments=experiments, chosen=chosen, run=run, cores=os.cpu_count() or 1, lang=lang)
    return {
        "lang_switch": _element(html, '<span class="lang-switch"', "span"),
        "playbar": _element(html, '<div class="playbar"', "div"),
        "timeline_template": _element(html, '<template id="run-timeline-template"', "template"),
        "details_template": _element(html, '<template id="run-details-template"', "template"),
        "legend": _element(html, '<details class="legend"', "details"),
    }


def replay_html(run: dict[str, Any], experiment: dict[str, Any] | None,
                experiments: list[dict[str, Any]], events_ndjson: bytes,
                lang: str = i18n.DEFAULT) -> str:
    """The whole file. `experiment`: the lesson as GET /api/experiments/{id} gives it (with
    its lesson text), or None if this server does not know it; `experiments`: the catalogue
    (the dashboard's markup is rendered with it); `lang`: the language shown until the
    reader's browser chooses (and where it prefers neither)."""
    if lang not in i18n.LANGS:
        raise ValueError(f"no language {lang!r}; valid: {', '.join(i18n.LANGS)}")
    chosen = experiment["id"] if experiment else experiments[0]["id"]
    lesson = experiment or {"id": run.get("experiment"), "title": run.get("experiment"),
                            "summary": "", "section": "", "lesson": "", "lesson_zh": "",
                            "code": "", "tracks": {}, "params": {}, "compare": None}
    pages = {each: _env.get_template("partials/replay_page.html").render(
                 lang=each, i18n_catalog=i18n.page_catalog(each), run=run, experiment=lesson,
                 program=program_view(run) if run.get("program") else None,
                 parts=page_parts(experiments, chosen, run, each))
             for each in i18n.LANGS}
    sources = modules()
    return _env.get_template("replay.html").render(
        lang=lang, run=run, experiment=lesson, shown=pages[lang],
        others={each: page for each, page in pages.items() if each != lang},
        css=(STATIC / "app.css").read_text(encoding="utf-8"),
        data_json=safe_json({"run": run, "experiment": lesson}), facts=page_facts(),
        events_json=events_json(events_ndjson),
        modules_json=safe_json([[name, source] for name, source in sources]),
        placeholder=PLACEHOLDER, entry=ENTRY)


def replay_bytes(run: dict[str, Any], experiment: dict[str, Any] | None,
                 experiments: Sequence[dict[str, Any]], events_ndjson: bytes,
                 lang: str = i18n.DEFAULT) -> bytes:
    return replay_html(run, experiment, list(experiments), events_ndjson, lang).encode("utf-8")
