"""The trees a benchmark compares: this working tree ("after") and, with `--before REV`, an
earlier commit checked out beside it ("before").

Runs in the bench process. The earlier commit is a detached `git worktree` in a temporary
directory, removed at the end; its server (`python -m procscope`) and its plain lessons run
with its package view (tools.package_view) first on PYTHONPATH, so they import its code, not
this tree's editable install. A commit from before the package was named procscope (its
folders imported as `app` and `experiments`) cannot be compared: trees() says so. The
benchmark's own code (viewers, timing, the baselines) is this tree's for both, so the two
columns differ only by the code under test.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.server import ROOT
from tools import package_view


@dataclass(frozen=True)
class Tree:
    name: str  # "before" or "after"
    root: Path
    rev: str  # the commit it is (short), with "+dirty" for a working tree with changes


def _describe(root: Path) -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                            "app", "experiments"], cwd=root, check=True,
                           capture_output=True, text=True).stdout.strip()
    return rev + ("+uncommitted" if dirty else "")


@contextmanager
def trees(before: str | None) -> Iterator[list[Tree]]:
    """[before, after] with `before` a revision, else [after]; the worktree is removed on
    the way out, whatever happens."""
    after = Tree("after", ROOT, _describe(ROOT))
    if before is None:
        yield [after]
        return
    tmp = Path(tempfile.mkdtemp(prefix="procscope-bench-before-"))
    path = tmp / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), before],
                   cwd=ROOT, check=True)
    try:
        if package_view.module(path) != "procscope":
            raise SystemExit(f"--before {before}: that commit's package is not procscope yet "
                             "(app/ and experiments/ imported by those names); pick a later one")
        yield [Tree("before", path, _describe(path)), after]
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT,
                       check=False)
        shutil.rmtree(tmp, ignore_errors=True)
