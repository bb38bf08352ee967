"""Where the files the server reads at run time are: static/, templates/, trace_site/.

Found through the installed package (importlib.resources), never through the source tree:
the wheel carries static/ as procscope.static and templates/ as procscope.templates
(pyproject.toml), and an editable install maps the same names onto the repository's folders.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _folder(package: str, *parts: str) -> Path:
    found = files(package).joinpath(*parts)
    # Starlette's StaticFiles, Jinja2's loader and PYTHONPATH all need a real directory.
    if not isinstance(found, Path):
        raise RuntimeError(f"procscope must be installed as files, not zipped: {found!r}")
    return found


STATIC = _folder("procscope.static")
TEMPLATES = _folder("procscope.templates")
# Put first on a traced program's PYTHONPATH (procscope.trace.traced_program).
TRACE_SITE = _folder("procscope.trace", "trace_site")
