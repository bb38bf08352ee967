"""Settings refuse what no server can run with, whoever makes them (issue 24, item 4).

The bug: the flags were checked in `serve()` (and `--replicas` in its supervisor), so
`create_app(Settings(sample_hz=0))`, a bench or a test building Settings, and the server
`procscope trace` starts for itself all skipped the checks the command line made. Now
`Settings` checks each value as it is made, and the command line prints what it refuses
with the words and exit codes it always used.

In the pytest process (Settings, create_app and `procscope.cli.main`, which exits before
anything is served), and once through a real `python -m procscope`.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from procscope import cli
from procscope.settings import SettingRefused, Settings
from procscope.web.main import create_app

REDIS = "redis://127.0.0.1:1/0"  # never reached: refused before any connection

# (the values, the words procscope prints after "procscope: ", its exit code)
REFUSED: list[tuple[dict[str, Any], str, int]] = [
    ({"token": "short"}, "the token must be 8 to 1024 letters, digits", 2),
    ({"token": "has a space"}, "the token must be 8 to 1024 letters, digits", 2),
    ({"port": 65536}, "--port must be 0 to 65535", 2),
    ({"port": -1}, "--port must be 0 to 65535", 2),
    ({"replicas": 0}, "--replicas must be at least 1", 2),
    ({"replicas": 2, "port": 0, "redis": REDIS},
     "--replicas needs a --port other than 0 (replica i listens on PORT+i)", 2),
    ({"replicas": 3, "port": 65534, "redis": REDIS},
     "--replicas 3 from --port 65534 needs ports past 65535", 2),
    ({"replicas": 2, "port": 8000},
     "--replicas needs --redis URL (or PROCSCOPE_REDIS): the replicas share their runs "
     "through it", 2),
    ({"sample_budget": 0.0}, "--sample-budget must be in (0, 1]", 1),
    ({"sample_budget": 1.5}, "--sample-budget must be in (0, 1]", 1),
    ({"sample_hz": 0.5}, "--sample-hz must be between 1 and 5000", 1),
    ({"sample_hz": 5001.0}, "--sample-hz must be between 1 and 5000", 1),
    ({"cpu_lanes": "fast"}, "--cpu-lanes must be auto, exact or sampled", 1),
    ({"keep_runs": 0}, "--keep-runs must be at least 1", 1),
    ({"max_db_mb": 0.0}, "--max-db-mb must be more than 0", 1),
    ({"send_timeout": 0.0}, "--send-timeout must be more than 0", 1),
]
IDS = [",".join(f"{k}={v}" for k, v in bad.items()) for bad, _, _ in REFUSED]


def flags(values: dict[str, Any]) -> list[str]:
    return [word for name, value in values.items()
            for word in ("--" + name.replace("_", "-"), str(value))]


@pytest.mark.parametrize(("bad", "words", "exit_code"), REFUSED, ids=IDS)
def test_settings_refuse_each_bad_value_naming_its_flag(bad: dict[str, Any], words: str,
                                                        exit_code: int) -> None:
    with pytest.raises(SettingRefused, match=re.escape(words)) as refused:
        Settings(db=":memory:", **bad)
    assert refused.value.exit_code == exit_code
    # An app cannot be made of them either: no Settings holds them. Nor can serve()'s
    # replace() (the port the kernel chose, a generated token) bring one in.
    with pytest.raises(SettingRefused, match=re.escape(words)):
        create_app(Settings(db=":memory:", **bad))
    with pytest.raises(SettingRefused, match=re.escape(words)):
        dataclasses.replace(Settings(db=":memory:"), **bad)


@pytest.mark.parametrize(("bad", "words", "exit_code"), REFUSED, ids=IDS)
def test_the_command_line_prints_the_same_words_and_exit_code(
        bad: dict[str, Any], words: str, exit_code: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PROCSCOPE_REDIS", raising=False)
    monkeypatch.delenv("PROCSCOPE_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--db", ":memory:", *flags(bad)])
    if exit_code == 2:  # argparse's: its usage line, then the words
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: procscope") and f"procscope: error: {words}" in err
    else:  # SystemExit("procscope: ..."): Python prints it and exits 1
        assert isinstance(exited.value.code, str)
        assert exited.value.code.startswith(f"procscope: {words}")


def test_replicas_take_redis_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """$PROCSCOPE_REDIS counts as --redis before the Settings are checked, as it did when
    serve() read it: only a bad port stops these."""
    monkeypatch.setenv("PROCSCOPE_REDIS", REDIS)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--replicas", "2", "--port", "0"])
    assert exited.value.code == 2  # the port, not the missing --redis


def test_trace_refuses_bad_server_options_before_its_program_runs(
        tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(SystemExit) as exited:
        cli.main(["--sample-hz", "0", "trace", "-c", f"open({str(marker)!r}, 'w')"])
    assert exited.value.code == "procscope: --sample-hz must be between 1 and 5000"
    assert not marker.exists()


def test_a_real_procscope_exits_1_saying_the_flag() -> None:
    out = subprocess.run([sys.executable, "-m", "procscope", "--db", ":memory:",
                          "--keep-runs", "0"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert (out.returncode, out.stderr) == (1, "procscope: --keep-runs must be at least 1\n")
