"""A lesson that raises: how a failing experiment looks (enabled by PROCSCOPE_SELFTEST=1)."""

from __future__ import annotations

from typing import Any

from procscope.experiments.spec import Experiment


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process."""
    print("about to divide by zero")
    return {"value": 1 / 0}


SPEC = Experiment(
    id="fails", title="A lesson that raises", summary="Its main raises ZeroDivisionError.",
    section="-", lesson="Shows how a failing experiment ends: failed, with its traceback.",
    lesson_zh="", code="1 / 0", params={}, main=main,
)
