"""The README's curl examples, run as written (bash, curl) against a real server.

Regression for issue 23: the examples used run 1, while history makes ids grow (run 1 is
rarely the reader's); they now use the id the POST returned.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
from conftest import ROOT, Server, read_events


def curl_block() -> str:
    """The shell block under "## With curl" in README.md."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## With curl", 1)[1]
    lines = re.match(r"\s*\n((?: {4}.*\n|\n)+)", section)
    assert lines, "no indented block under ## With curl"
    return "\n".join(line[4:] for line in lines.group(1).splitlines())


def test_the_curl_examples_work_as_written(tmp_path: Path) -> None:
    server = Server()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            # An earlier run, so that the README's run is not run 1.
            first = client.post("/api/runs", json={"experiment": "process_start",
                                                   "params": {"time_scale": 0.05}}).json()
            read_events(client, first["id"])
            script = curl_block().replace("localhost:8000", server.url.removeprefix("http://"))
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            run_id = re.search(r"^run (\d+)$", done.stdout, re.M)
            assert run_id and run_id.group(1) != first["id"], done.stdout
            run = client.get(f"/api/runs/{run_id.group(1)}").json()
            assert run["experiment"] == "ticket_rush" and run["status"] == "succeeded"
            # The SSE stream and the NDJSON of that run both reached run.end.
            assert '"kind": "run.end"' in done.stdout or '"kind":"run.end"' in done.stdout
            events = [json.loads(line) for line in
                      (tmp_path / "run.ndjson").read_text(encoding="utf-8").splitlines()]
            assert events[0]["kind"] == "run.start" and events[-1]["kind"] == "run.end"
            assert all(e["run"] == run_id.group(1) for e in events)
            assert (tmp_path / "run.html").read_text(encoding="utf-8").startswith("<!doctype")
            assert json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
            # The import made one more run, with the same events.
            runs = client.get("/api/runs").json()
            assert len(runs) == 3 and runs[0]["id"] not in (first["id"], run_id.group(1))
    finally:
        server.stop()
