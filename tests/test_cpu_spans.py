"""Unit tests for app.kernel.cpu_spans: stretches merged or sampled keep the time on a core."""

from __future__ import annotations

import random
from typing import Any

from procscope.kernel.cpu_spans import MERGE_GAP_NS, ExactSpans, SampledSpans
from procscope.kernel.switches import Running, Span

MS = 1_000_000


def on_core(events: list[dict[str, Any]]) -> float:
    return float(sum((e["data"]["t1"] - e["data"]["t0"]) * e["data"].get("share", 1.0)
                     for e in events))


def test_exact_stretches_close_together_are_one_event_with_their_share() -> None:
    spans = ExactSpans(run_t0_ns=0)
    pieces = [Span(1, 2, 0, 0, 3 * MS, True), Span(1, 2, 0, 3 * MS + 50_000, 5 * MS, False)]
    # The thread is back on core 0 right after: the stretch is held back.
    assert spans.add(pieces[:1], [Running(1, 2, 0, 3 * MS + 50_000)]) == []
    [event] = spans.add(pieces[1:], [])
    d = event["data"]
    assert (event["pid"], d["tid"], d["cpu"], d["t0"], d["t1"]) == (1, 2, 0, 0.0, 0.005)
    assert d["n"] == 2 and d["preempted"] is False
    assert abs(d["share"] - (5 * MS - 50_000) / (5 * MS)) < 1e-4


def test_exact_stretches_apart_or_on_other_cores_stay_apart() -> None:
    spans = ExactSpans(run_t0_ns=1 * MS)
    out = spans.add([Span(1, 2, 0, 1 * MS, 2 * MS, True),
                     Span(1, 2, 1, 2 * MS + 10_000, 3 * MS, True),  # migrated: another core
                     Span(1, 2, 1, 3 * MS + MERGE_GAP_NS, 4 * MS, False)], [])
    assert [(e["data"]["cpu"], e["data"]["t0"], e["data"]["t1"]) for e in out] == [
        (0, 0.0, 0.001), (1, 0.00101, 0.002), (1, 0.0021, 0.003)]
    assert all("share" not in e["data"] for e in out)
    assert out[0]["t"] == 2 * MS  # stamped when the stretch ended


def test_merging_keeps_the_total_exactly() -> None:
    rng = random.Random(7)
    spans = ExactSpans(run_t0_ns=0)
    t, total, out, batch = 0, 0, [], []
    for i in range(2000):
        t += rng.choice([1_000, 20_000, 80_000, 200_000, 2 * MS])
        length = rng.randint(1_000, 3 * MS)
        batch.append(Span(1, 2, rng.choice([0, 0, 0, 1]), t, t + length, False))
        total += length
        t += length
        if i % 50 == 49:  # one drain of the recorder
            out += spans.add(batch, [])
            batch = []
    out += spans.flush()
    assert len(out) < 2000
    assert abs(on_core(out) * 1e9 - total) < 2000 * 2  # µs rounding of t0/t1 only


def test_sampled_periods_become_stretches_with_their_share() -> None:
    spans = SampledSpans(run_t0_ns=0)
    readings = [(0, 0), (1 * MS, 1 * MS), (2 * MS, 2 * MS), (3 * MS, 2_500_000),
                (4 * MS, 3 * MS), (5 * MS, 3 * MS)]  # ran 1, 1, 0.5, 0.5, 0 of each ms
    out: list[dict[str, Any]] = []
    shares = []
    for t, run in readings:
        share, closed = spans.reading(1, 2, t, run, cpu=1)
        shares.append(share)
        out += closed
    out += spans.flush()
    assert shares == [None, 1.0, 1.0, 0.5, 0.5, 0.0]
    assert [(e["data"]["t0"], e["data"]["t1"], e["data"]["share"]) for e in out] == [
        (0.0, 0.002, 1.0), (0.002, 0.004, 0.5)]
    assert abs(on_core(out) - 0.003) < 1e-9


def test_a_thread_that_is_gone_has_its_stretch_closed() -> None:
    spans = SampledSpans(run_t0_ns=0)
    spans.reading(1, 3, 0, 0, cpu=0)
    spans.reading(1, 3, 1 * MS, 1 * MS, cpu=0)
    [event] = spans.gone(1, 3)
    assert event["data"]["tid"] == 3 and event["data"]["t1"] == 0.001
    assert spans.flush() == []
    # Only shares wanted (the core lanes are exact): no stretches at all.
    quiet = SampledSpans(run_t0_ns=0, emit=False)
    quiet.reading(1, 2, 0, 0, cpu=0)
    assert quiet.reading(1, 2, MS, MS // 4, cpu=0) == (0.25, [])
    assert quiet.flush() == []
