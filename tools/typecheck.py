"""python -m tools.typecheck: mypy --strict on the package as it is installed (procscope), then
on what CI runs beside it: tools/, bench/ and tests/.

mypy does not follow the editable install's import hook, and the repository's folders (app/,
experiments/) are not named as the package: it checks a view of links (tools.package_view).
tests/ is on mypy's path as pytest puts it on sys.path (its helpers import as `conftest`,
`browser`, ...). Nothing CI ships is left unchecked (tests/data/ holds published programs,
run as they are).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools import package_view

ROOT = Path(__file__).resolve().parent.parent
# Each run after the first reads the package's results from the cache (a second or two).
MYPY = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(ROOT / ".cache" / "mypy")]


def main() -> int:
    view = package_view.build(ROOT, ROOT / ".cache" / "package-view")
    dirs = package_view.mapping(ROOT)
    code = 0
    for args, path in ((["-p", "procscope"], [view]),
                       (["tools", "bench", "tests"], [view, ROOT / "tests"])):
        env = dict(os.environ, MYPYPATH=os.pathsep.join(map(str, path)))
        done = subprocess.run(MYPY + args, cwd=ROOT, env=env, capture_output=True, text=True)
        # Each message names the file in the repository, not its link in the view: the
        # deepest package first, so that procscope/experiments/ becomes experiments/.
        out = done.stdout
        for package in sorted(dirs, key=lambda p: -p.count(".")):
            linked = str(view.relative_to(ROOT).joinpath(*package.split("."))) + "/"
            out = out.replace(linked, dirs[package].rstrip("/") + "/")
        sys.stdout.write(out)
        sys.stderr.write(done.stderr)
        code = code or done.returncode
    return code


if __name__ == "__main__":
    sys.exit(main())
