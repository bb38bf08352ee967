"""Issue 13, item 7: a run's outcome in Chinese (`outcome_zh` in the run's JSON, from each
lesson's spec), for the page's Chinese interface.

Every lesson runs for real on a real server (fast: time_scale 0.1); its run's JSON must tell
the outcome in Chinese as well as in English, saying the same verdict (`bad`).
"""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import Server, read_events

from procscope import catalog

CJK = re.compile(r"[\u4e00-\u9fff]")


def _lessons() -> list[str]:
    from procscope.experiments import EXPERIMENTS

    return [e for e in EXPERIMENTS if e not in ("fails", "flood")]


def test_every_lesson_tells_its_outcome_in_chinese_too() -> None:
    assert [e for e in _lessons() if catalog.SPECS[e].outcome_zh is None] == []


@pytest.mark.parametrize("experiment", _lessons())
def test_a_real_run_says_its_outcome_in_chinese(experiment: str, client: httpx.Client,
                                                server: Server) -> None:
    run = client.post("/api/runs", json={"experiment": experiment,
                                         "params": {"time_scale": 0.1}})
    assert run.status_code == 201, run.text
    read_events(client, run.json()["id"])
    done = client.get(f"/api/runs/{run.json()['id']}").json()
    assert done["status"] == "succeeded"
    en, zh = done["outcome"], done["outcome_zh"]
    assert en is not None and zh is not None
    assert CJK.search(zh["text"]) and CJK.search(zh["why"]), zh
    assert zh["bad"] == en["bad"]
    assert "?" not in zh["text"] or "?" in en["text"]  # no field the Chinese one misread


def test_a_run_that_did_not_succeed_is_told_in_chinese_too() -> None:
    failed = catalog.outcome("join", "failed", None, "Traceback...\nValueError: boom\n", "zh")
    assert failed == {"text": "运行失败：ValueError: boom。", "why": "", "bad": True}
    for status in ("cancelled", "timed_out", "interrupted"):
        said = catalog.outcome("gil", status, None, None, lang="zh")
        en = catalog.outcome("gil", status, None, None)
        assert said is not None and en is not None and CJK.search(said["text"]), status
        assert said["bad"] == en["bad"]
    assert catalog.outcome("gil", "running", None, None, lang="zh") is None
