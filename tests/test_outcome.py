"""The run's outcome in words (app.live.catalog.outcome), built server-side from each
lesson's spec."""

from __future__ import annotations

import logging

import pytest

from procscope.live import catalog

SELFTEST = {"fails", "flood"}  # load generators, not lessons: in SPECS when PROCSCOPE_SELFTEST
# was set as app.live.catalog was first imported (tests/conftest.py sets it for its servers)


def test_every_lesson_tells_its_outcome_in_words() -> None:
    lessons = [s for s in catalog.SPECS.values() if s.id not in SELFTEST]
    assert len(lessons) >= 13
    assert [s.id for s in lessons if s.outcome is None] == []


def test_a_lesson_says_what_happened_from_its_result() -> None:
    said = catalog.outcome("ticket_rush", "succeeded",
                           {"tickets": 1, "sold": 3, "remaining": 0, "oversold": 2,
                            "torn_reads": 0, "lock": False}, None)
    assert said is not None
    assert said["text"].startswith("Sold 3 tickets, stock was 1") and "2 oversold" in said["text"]
    assert "Without the Lock" in said["why"] and said["bad"] is True
    said = catalog.outcome("ticket_rush", "succeeded",
                           {"tickets": 1, "sold": 1, "oversold": 0, "lock": True}, None)
    assert said is not None and "none oversold" in said["text"] and not said["bad"]
    # With the Lock, a buyer may still catch the file half-written while only looking
    # (the tutorial's search() runs before the Lock): said, and not the Lock's failure.
    said = catalog.outcome("ticket_rush", "succeeded", {"tickets": 1, "sold": 1, "oversold": 0,
                                                         "torn_reads": 1, "lock": True}, None)
    assert said is not None and "outside the Lock" in said["text"] and not said["bad"]


def test_the_same_sentence_for_every_lesson_when_a_run_did_not_succeed() -> None:
    failed = catalog.outcome("join", "failed", None, "Traceback...\nValueError: boom\n")
    assert failed == {"text": "The run failed: ValueError: boom.", "why": "", "bad": True}
    for status in ("cancelled", "timed_out", "interrupted"):
        said = catalog.outcome("gil", status, None, None)
        assert said is not None and said["text"], status
    assert catalog.outcome("gil", "running", None, None) is None  # nothing to say yet


def test_a_result_a_lesson_cannot_read_gives_no_words_not_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        # Every lesson, fed results it did not make: never an exception.
        for eid in catalog.SPECS:
            results: tuple[object, ...] = ({}, {"sold": "many"},
                                           {"results": None, "speedup": "fast"}, [])
            for result in results:
                said = catalog.outcome(eid, "succeeded", result, None)
                assert said is None or set(said) == {"text", "why", "bad"}, (eid, result)
    assert catalog.outcome("no_such_lesson", "succeeded", {}, None) is None
