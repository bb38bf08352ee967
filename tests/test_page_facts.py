"""Issue 24, item 5: what the page must know is sent from Python, and the browser code knows
no lesson (ARCHITECTURE.md, decision 10).

The final statuses (app.pipe.ledger.FINAL), the track kinds (experiments.spec.TRACK_KINDS)
and the standard library's helper threads (spec.LIBRARY_THREADS) reach the browser in the
page's `#page-facts`, on the live page and in an exported replay; a lesson's own event
kinds, marks and helper threads come with the lesson (GET /api/experiments). Before, they
were copied by hand into static/run_panel.js, run_model.js and marks.js, and run_model.js
knew `ticket.sold` and `lost-task-watch` by name.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import httpx
import pytest
from conftest import ROOT

from procscope.experiments import spec
from procscope.live import catalog
from procscope.pipe import ledger

STATIC = ROOT / "static"
FACTS = re.compile(r'<script type="application/json" id="page-facts">(.*?)</script>', re.S)

# The kinds whose meaning the browser code knows (docs/api.md, Event kinds): the server's,
# the reporter's, and the ones any lesson may emit to be drawn as spans or tracks (lock.*,
# queue.*, join.*, wait.*, task.start/end). Every other kind a lesson emits is its own.
PAGE_KINDS = frozenset({
    "run.start", "run.end", "run.result", "run.error", "proc.start", "proc.exit", "proc.reap",
    "proc.state", "proc.signal", "cpu.run", "cpu.lanes", "sampler.rate", "thread.exit", "print",
    "error", "lock.wait", "lock.acquire", "lock.release", "queue.put", "queue.get",
    "queue.full", "queue.empty", "join.wait", "join.done", "wait.start", "wait.end",
    "task.start", "task.end",
})


def _scripts() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(STATIC.glob("*.js"))
            if not path.name.endswith(".min.js")}


def _lesson_kinds() -> set[str]:
    """Every kind a lesson emits, or names in its spec, that is not one of PAGE_KINDS."""
    kinds: set[str] = set()
    for path in (ROOT / "experiments").glob("*.py"):
        kinds.update(re.findall(r'\bemit\(\s*"([a-z_.]+)"', path.read_text(encoding="utf-8")))
    for each in catalog.SPECS.values():
        kinds.update(each.marks)
        kinds.update(track.counts for track in each.tracks.values() if track.counts)
    return kinds - PAGE_KINDS


def _hits(pattern: str) -> list[str]:
    return [f"static/{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
            for name, text in _scripts().items() for m in re.finditer(pattern, text)]


def test_no_lesson_kind_appears_in_the_browser_code() -> None:
    kinds = _lesson_kinds()
    assert {"ticket.sold", "file.torn", "task.lost", "conn.accept"} <= kinds  # the scan sees them
    found = []
    for kind in sorted(kinds):
        # A dotted kind anywhere (code or comment); a one-word kind (`hang`, `callback`) is
        # also an English word, so only as a string.
        pattern = (rf"(?<![\w.]){re.escape(kind)}(?![\w])" if "." in kind
                   else rf"[\"'`]{re.escape(kind)}[\"'`]")
        found += _hits(pattern)
    assert found == []


def test_no_lesson_id_appears_in_the_browser_code() -> None:
    ids = set(catalog.SPECS) | {"flood", "fails"}  # the self-test lessons too
    # `join` is also the family of the page's own join.wait / join.done spans (and a method).
    families = {kind.split(".")[0] for kind in PAGE_KINDS}
    found = []
    for lesson in sorted(ids - families):
        found += _hits(rf"(?<![\w.]){re.escape(lesson)}(?![\w(])")
    assert found == []
    # Nor the lesson's helper thread's name.
    assert _hits(r"lost-task-watch") == []


def test_the_facts_in_the_js_are_not_copies() -> None:
    """What page_facts.js reads from the page is nowhere in the code as a literal."""
    found = _hits(r"\[\s*\"succeeded\"|\"timed_out\"\s*,|\[\s*\"lock\",\s*\"queue\""
                  r"|QueueFeederThread")
    assert found == []


def _facts(html: str) -> dict[str, Any]:
    match = FACTS.search(html)
    assert match, "the page has no #page-facts"
    out: dict[str, Any] = json.loads(match.group(1))
    return out


def _assert_the_facts(facts: dict[str, Any]) -> None:
    assert set(facts["final"]) == ledger.FINAL
    assert facts["track_kinds"] == list(spec.TRACK_KINDS)
    assert facts["library_threads"] == list(spec.LIBRARY_THREADS)


def test_the_page_and_the_replay_carry_the_facts(client: httpx.Client,
                                                 run_experiment: Any) -> None:
    for address in ("/", "/?experiment=join"):
        for lang in ("en", "zh"):
            response = client.get(address, headers={"Accept-Language": lang})
            assert response.status_code == 200
            _assert_the_facts(_facts(response.text))
    run = run_experiment("ticket_rush", n=3, time_scale=0.05).run
    page = client.get(f"/runs/{run['id']}")
    _assert_the_facts(_facts(page.text))
    replay = client.get(f"/api/runs/{run['id']}/replay.html")
    assert replay.status_code == 200
    _assert_the_facts(_facts(replay.text))
    # The lesson's own drawing comes with the lesson, in both.
    data = re.search(r'<script type="application/json" id="replay-data">(.*?)</script>',
                     replay.text, re.S)
    assert data
    lesson = json.loads(data.group(1))["experiment"]
    assert lesson["marks"] == {"ticket.sold": "star", "file.torn": "cross"}
    assert lesson["tracks"]["sold"]["counts"] == "ticket.sold"


def test_the_lessons_declare_what_the_page_draws_of_them(client: httpx.Client) -> None:
    lessons = {e["id"]: e for e in client.get("/api/experiments").json()}
    assert lessons["ticket_rush"]["tracks"]["sold"] == {
        "always": True, "stock_param": "tickets", "counts": "ticket.sold"}
    for lesson in ("pool_apply", "pool_callback", "socket_server"):
        assert lessons[lesson]["helper_threads"] == ["lost-task-watch"]
        assert lessons[lesson]["marks"] == {"task.lost": "cross"}
    assert lessons["executor_map"]["marks"] == {"task.lost": "cross"}


def test_every_mark_shape_is_drawn() -> None:
    """spec.MARK_SHAPES is what a lesson may ask for: marks.js draws each one."""
    marks = (STATIC / "marks.js").read_text(encoding="utf-8")
    lanes = (STATIC / "process_lanes.js").read_text(encoding="utf-8")
    for shape in spec.MARK_SHAPES:
        assert f'case "{shape}"' in marks or shape in ("diamond", "tick"), shape
    assert "default: // diamond" in marks and 'shape === "tick"' in lanes


def test_the_node_tests_facts_are_the_servers() -> None:
    """tests/js/page_facts.json stands in for the page under node --test."""
    saved = json.loads((ROOT / "tests" / "js" / "page_facts.json").read_text(encoding="utf-8"))
    assert saved == catalog.page_facts()


def test_a_spec_refuses_an_unknown_mark_or_a_sold_track_that_counts_nothing() -> None:
    base = catalog.SPECS["ticket_rush"]
    with pytest.raises(ValueError, match="valid: tick, star"):
        dataclasses.replace(base, marks={"ticket.sold": "heart"})
    with pytest.raises(ValueError, match="counts="):
        dataclasses.replace(base, tracks={"sold": spec.Track(stock_param="tickets")})
