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
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "-p", "procscope"],
                          cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
