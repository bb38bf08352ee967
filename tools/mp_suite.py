"""python -m tools.mp_suite [METHOD ...]: CPython's own multiprocessing tests, all of them,
without procscope and under `procscope trace`, and the counts side by side.

    python -m tools.mp_suite                  # fork, spawn, forkserver
    python -m tools.mp_suite spawn --json     # one method; the table, then JSON

For each start method, test._test_multiprocessing (every class its
install_tests_in_module_dict makes, through tests/data/cpython_mp/mp_suite.py) runs once
plainly and once as `procscope trace --json-file` (no server), one after the other; the
table gives tests run, failures, errors, skips and the wall time of each, and the tests
whose outcome differs. Too long for CI (minutes per method on two cores): the README
quotes its table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "tests" / "data" / "cpython_mp" / "mp_suite.py"
METHODS = ("fork", "spawn", "forkserver")
OUTCOMES = ("passed", "failed", "errors", "skipped", "expected_failures")
TIMEOUT = 3600


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def run(method: str, traced: bool) -> dict[str, Any]:
    """One whole run of the suite; its summary (the JSON line it prints last) and time."""
    with tempfile.TemporaryDirectory(prefix="mp-suite-") as tmp:
        runtime = Path(tmp) / "runtime"  # empty: `procscope trace` finds no server
        runtime.mkdir(mode=0o700)
        prefix = [sys.executable]
        if traced:
            prefix += ["-m", "procscope", "trace", "--json-file", str(Path(tmp) / "events")]
        started = time.monotonic()
        done = subprocess.run([*prefix, str(SUITE), method], cwd=SUITE.parent,
                              capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL,
                              env={**_env(), "PROCSCOPE_RUNTIME_DIR": str(runtime)})
        seconds = time.monotonic() - started
        events = 0
        if traced:
            with open(Path(tmp) / "events", "rb") as lines:
                events = sum(1 for _ in lines)
    last = done.stdout.strip().splitlines()[-1:] or ["{}"]
    try:
        summary: dict[str, Any] = json.loads(last[0])
    except json.JSONDecodeError:
        summary = {}
    summary["wall"] = seconds
    summary["exitcode"] = done.returncode
    summary["events"] = events
    if not summary.get("passed") and not summary.get("failed"):
        summary["stderr_tail"] = done.stderr[-2000:]
    return summary


def counts(summary: dict[str, Any]) -> dict[str, int]:
    got = {k: len(summary.get(k, [])) for k in OUTCOMES}
    got["run"] = got["passed"] + got["failed"] + got["errors"] + got["expected_failures"]
    return got


def differing(plain: dict[str, Any], traced: dict[str, Any]) -> list[str]:
    """Tests whose outcome is not the same in both runs."""
    outcome: dict[str, dict[str, str]] = {}
    for name, summary in (("plain", plain), ("traced", traced)):
        for kind in OUTCOMES:
            for test in summary.get(kind, []):
                outcome.setdefault(test, {})[name] = kind
    return sorted(f"{test}: {o.get('plain')} -> {o.get('traced')}"
                  for test, o in outcome.items() if o.get("plain") != o.get("traced"))


def row(method: str, how: str, summary: dict[str, Any]) -> str:
    c = counts(summary)
    return (f"| {method} | {how} | {c['run']} | {c['failed']} | {c['errors']} | "
            f"{c['skipped']} | {summary['wall']:.0f} s | {summary['exitcode']} |")


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    methods = [a for a in argv if not a.startswith("--")] or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"unknown start method {unknown[0]!r}; valid: {', '.join(METHODS)}",
              file=sys.stderr)
        return 2
    print(f"python -m tools.mp_suite {' '.join(methods)}  "
          f"(CPython {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print("| method | run | tests run | failures | errors | skipped | wall | exit |")
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    same = True
    for method in methods:
        plain = run(method, traced=False)
        print(row(method, "plain", plain), flush=True)
        traced = run(method, traced=True)
        print(row(method, f"traced ({traced['events']} events)", traced), flush=True)
        diff = differing(plain, traced)
        same = same and counts(plain) == counts(traced)
        for line in diff:
            print(f"  differs: {line}")
        for summary in (plain, traced):
            if "stderr_tail" in summary:
                print(summary["stderr_tail"], file=sys.stderr)
        results[method] = {"plain": counts(plain), "traced": counts(traced),
                           "plain_wall": plain["wall"], "traced_wall": traced["wall"],
                           "differs": diff}
    if as_json:
        print(json.dumps(results))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
