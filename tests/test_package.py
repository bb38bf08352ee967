"""The package as a user installs it: built (sdist, then the wheel from the sdist, as pip
does from PyPI), installed into a fresh venv, run from a folder that is not the repository.

Regression for issue 23: the wheel held app/ and experiments/ only, under those generic
top-level names, and the installed server died at start ("Directory .../site-packages/static
does not exist") because it looked for static/ and templates/ beside the source tree.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, Server, read_events

# `import x from "./y.js"`, `export ... from "./y.js"`, `import("./y.js")`: an ES module's
# static and dynamic imports of the page's other scripts.
IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\./[\w./-]+\.js)["']""")
ASSET = re.compile(r"""(?:src|href)="(/static/[^"?#]+)""")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv (no site packages of this machine's) with the built wheel installed."""
    tmp = tmp_path_factory.mktemp("package")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    venv.create(tmp / "venv", with_pip=True)
    wheel = next((tmp / "dist").glob("procscope-*.whl"))
    subprocess.run([str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    yield tmp


def test_the_wheel_and_the_sdist_carry_one_package(installed: Path) -> None:
    wheel = next((installed / "dist").glob("procscope-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"procscope", wheel.name.split("-py3")[0]
                                                + ".dist-info"}
    # The files the server reads at run time, each checked against the tree it came from.
    for folder, package in (("static", "procscope/static"), ("templates", "procscope/templates"),
                            ("app/trace/trace_site", "procscope/trace/trace_site")):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert f"{package}/{path.relative_to(ROOT / folder)}" in names, path
    sdist = next((installed / "dist").glob("procscope-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    for needed in ("pyproject.toml", "README.md", "static/dashboard.js", "templates/base.html",
                   "app/trace/trace_site/sitecustomize.py", "experiments/join.py"):
        assert needed in members, needed
    site = next((installed / "venv" / "lib").glob("python3*/site-packages"))
    assert not (site / "app").exists() and not (site / "experiments").exists()
    assert (site / "procscope" / "static" / "dashboard.js").is_file()


def test_the_installed_server_serves_the_page_and_runs_a_lesson(installed: Path) -> None:
    bin_dir = installed / "venv" / "bin"
    version = subprocess.run([str(bin_dir / "procscope"), "--version"], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    assert version.strip() == f"procscope {metadata.version('procscope')}"
    server = Server(command=[str(bin_dir / "procscope")], cwd=installed)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            page = client.get("/")
            assert page.status_code == 200 and "procscope" in page.text
            # Every file the page loads, and every module those scripts import.
            todo = set(ASSET.findall(page.text))
            assert any(p.endswith(".js") for p in todo) and any(p.endswith(".css") for p in todo)
            seen: set[str] = set()
            while todo:
                path = todo.pop()
                seen.add(path)
                response = client.get(path)
                assert response.status_code == 200, path
                if path.endswith(".js"):
                    base = path.rsplit("/", 1)[0]
                    todo |= {f"{base}/{m[2:]}" for m in IMPORT.findall(response.text)} - seen
            assert "/static/run_model.js" in seen  # reached through the imports
            created = client.post("/api/runs", json={"experiment": "join",
                                                     "params": {"time_scale": 0.05}})
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            events = read_events(client, run_id)
            assert events[-1]["kind"] == "run.end"
            run = client.get(f"/api/runs/{run_id}").json()
            assert run["status"] == "succeeded", run
            assert len([e for e in events if e["kind"] == "proc.start"]) == 4
            assert client.get(f"/runs/{run_id}").status_code == 200
    finally:
        server.stop()


def test_the_installed_trace_arms_a_program(installed: Path) -> None:
    """`procscope trace` needs the wheel's trace_site/ (a sitecustomize on the program's
    PYTHONPATH): without it the program would run unwatched."""
    program = installed / "two.py"
    program.write_text("import multiprocessing as mp\n"
                       "if __name__ == '__main__':\n"
                       "    p = mp.Process(target=print, args=('child',))\n"
                       "    p.start(); p.join()\n", encoding="utf-8")
    out = installed / "events.ndjson"
    done = subprocess.run([str(installed / "venv" / "bin" / "procscope"), "trace",
                           "--json-file", str(out), str(program)], cwd=installed,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "child\n"
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len([e for e in events if e["kind"] == "proc.start"]) == 2
    assert any(e["kind"] == "print" and e["data"]["text"] == "child" for e in events)
