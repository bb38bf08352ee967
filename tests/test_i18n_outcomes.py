"""Issue 13, item 7: a run's outcome in Chinese (`outcome_zh` in the run's JSON, from each
lesson's spec), for the page's Chinese interface. Issue 23, item 3: and every label the
Chinese page draws for it, with no English left in it ("在 join() 中等待 the queue").

Every lesson runs for real on a real server (fast: time_scale 0.1), once per variant of its
params (the defaults, each choice, each switch flipped, its compare pair), so that every
branch of its outcome functions and every kind of label its events make is met. The run's
JSON must tell the outcome in Chinese as well as in English, with the same verdict; then
the run's page in a Chinese Chromium is read as it draws the run, from each source of
words: the spans' labels on the lanes (from the lesson's events: `name`, `waits_for`,
`label`, `outcome`, each with its `*_zh`; static/run_model.js), the key moments' labels
(the spec's `label_zh`, filled from the events and the result; static/key_moment.js),
everything written on the canvases (tracks, notes, marks; static/*.js), and the outcome
shown. Not English (test_i18n.english_words): code names and code, and the run's own data
shown as it is: its processes' names, the calls its events name, its params and its
result's strings (a queue's items, a command line, an exception's message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Server, read_events
from playwright.sync_api import Browser, BrowserContext, Page
from test_i18n import english_words
from test_page import wait_final

from procscope.experiments.spec import Experiment
from procscope.live import catalog

CJK = re.compile(r"[\u4e00-\u9fff]")


def _lessons() -> list[str]:
    from procscope.experiments import EXPERIMENTS

    return [e for e in EXPERIMENTS if e not in ("fails", "flood")]


def variants(spec: Experiment) -> list[dict[str, Any]]:
    """The params worth a run each: the defaults, each other choice of a choice, each switch
    flipped, and the lesson's compare pair (each one once)."""
    found: list[dict[str, Any]] = [{}]
    for name, p in spec.params.items():
        if p.choices is not None:
            found += [{name: c} for c in p.choices if c != p.default]
        elif isinstance(p.default, bool):
            found.append({name: not p.default})
    found += [dict(side) for side in spec.compare or ()]
    unique: dict[str, dict[str, Any]] = {}
    for params in found:
        unique.setdefault(json.dumps({**spec_defaults(spec), **params}, sort_keys=True), params)
    return list(unique.values())


def spec_defaults(spec: Experiment) -> dict[str, Any]:
    return {name: p.default for name, p in spec.params.items()}


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)


# What the page writes for its runs, read from the page's own objects (window.procscope):
# the canvases' text as drawn (fillText, over the whole run), and the full texts behind it.
READ_LABELS = """() => {
  const drawn = [];
  const proto = CanvasRenderingContext2D.prototype, fill = proto.fillText;
  proto.fillText = function (text, ...rest) {
    drawn.push(String(text));
    return fill.call(this, text, ...rest);
  };
  try {
    for (const p of procscope.panels) p.draw(procscope.view, Infinity, procscope.theme);
  } finally { proto.fillText = fill; }
  const out = { drawn, spans: [], moments: [], names: [], calls: [] };
  for (const p of procscope.panels) {
    for (const lane of p.model.lanes) {
      out.names.push(lane.name);
      for (const s of lane.spans || []) {
        if (s.label) out.spans.push(s.label);
        if (s.e0?.data?.call) out.calls.push(String(s.e0.data.call));
      }
    }
    for (const m of p.timeline.momentPx) out.moments.push(m.label);
  }
  const told = '[data-testid=result] .outcome, [data-testid=result] .why';
  out.outcome = [...document.querySelectorAll(told)].map(e => e.innerText);
  return out;
}"""


def cut_from(text: str, whole: list[str]) -> bool:
    """Is `text` (drawn with "…") a cut of one of the texts checked whole?"""
    pieces = [p for p in text.split("…") if p]
    return "…" in text and all(any(p in w for w in whole) for p in pieces)


@pytest.fixture
def zh_page(browser: Browser) -> Iterator[Page]:
    ctx: BrowserContext = browser.new_context(locale="zh-CN",
                                              viewport={"width": 1280, "height": 800})
    yield ctx.new_page()
    ctx.close()


def test_every_lesson_tells_its_outcome_in_chinese_too() -> None:
    assert [e for e in _lessons() if catalog.SPECS[e].outcome is None] == []


def test_the_variants_meet_every_choice_and_switch() -> None:
    assert variants(catalog.SPECS["producer_consumer"]) == [
        {}, {"mode": "naive"}, {"mode": "sentinel"}]
    assert variants(catalog.SPECS["join"]) == [{}, {"join": False}]


@pytest.mark.parametrize("experiment", _lessons())
def test_every_variant_of_a_lesson_says_its_outcome_and_draws_its_labels_in_chinese(
        experiment: str, client: httpx.Client, server: Server, zh_page: Page) -> None:
    for params in variants(catalog.SPECS[experiment]):
        run = client.post("/api/runs", json={"experiment": experiment,
                                             "params": {**params, "time_scale": 0.1}})
        assert run.status_code == 201, run.text
        read_events(client, run.json()["id"])
        done = client.get(f"/api/runs/{run.json()['id']}").json()
        assert done["status"] == "succeeded", (params, done.get("error"))
        en, zh = done["outcome"], done["outcome_zh"]
        assert en is not None and zh is not None, params
        assert CJK.search(zh["text"]) and CJK.search(zh["why"]), zh
        assert zh["bad"] == en["bad"]
        assert "?" not in zh["text"] or "?" in en["text"]  # no field the Chinese one misread

        zh_page.goto(f"{server.url}/runs/{done['id']}")
        zh_page.wait_for_function("window.procscope !== undefined")
        wait_final(zh_page)
        seen = zh_page.evaluate(READ_LABELS)
        verbatim = {*seen["names"], *seen["calls"], *strings(done["params"]),
                    *strings(done["result"])}
        whole = [*seen["spans"], *seen["moments"], *seen["names"], *seen["calls"]]
        texts = {*seen["spans"], *seen["moments"], *seen["outcome"], zh["text"], zh["why"],
                 *(d for d in seen["drawn"] if not cut_from(d, whole))}
        left = {text: words for text in sorted(texts)
                if (words := english_words(text, verbatim))}
        assert left == {}, f"{experiment} {params}: English on the Chinese page: {left}"


def test_a_run_that_did_not_succeed_is_told_in_chinese_too() -> None:
    failed = catalog.outcome("join", "failed", None, "Traceback...\nValueError: boom\n", "zh")
    assert failed == {"text": "运行失败：ValueError: boom。", "why": "", "bad": True}
    for status in ("cancelled", "timed_out", "interrupted"):
        said = catalog.outcome("gil", status, None, None, lang="zh")
        en = catalog.outcome("gil", status, None, None)
        assert said is not None and en is not None and CJK.search(said["text"]), status
        assert said["bad"] == en["bad"]
    assert catalog.outcome("gil", "running", None, None, lang="zh") is None
