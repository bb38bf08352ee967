"""python -m tools.typecheck: mypy --strict on the package as it is installed (procscope).

mypy does not follow the editable install's import hook, and the repository's folders (app/,
experiments/) are not named as the package: it checks a view of links (tools.package_view).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools import package_view

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    view = package_view.build(ROOT, ROOT / ".cache" / "package-view")
    env = dict(os.environ, MYPYPATH=str(view))
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "-p", "procscope"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    # Each message names the file in the repository, not its link in the view: the
    # deepest package first, so that procscope/experiments/ becomes experiments/.
    out = done.stdout
    dirs = package_view.mapping(ROOT)
    for package in sorted(dirs, key=lambda p: -p.count(".")):
        linked = str(view.relative_to(ROOT).joinpath(*package.split("."))) + "/"
        out = out.replace(linked, dirs[package].rstrip("/") + "/")
    sys.stdout.write(out)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
