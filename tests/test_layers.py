"""The tree is the architecture (ARCHITECTURE.md, "The tree"): each subpackage of procscope
imports only the subpackages below it, the top-level modules import none (but the entry
point), and no module imports another module's private names.

Read from the source with ast, the way Python resolves the imports: a test of the
repository's own rule, so that the picture in ARCHITECTURE.md cannot drift from the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

# Top to bottom, as ARCHITECTURE.md draws it.
ORDER = ["web", "cluster", "classroom", "history", "trace", "live", "kernel", "streams", "pipe"]
ENTRY_POINTS = {"cli", "__main__"}
APP = ROOT / "app"


def _place(path: Path) -> str:
    """The subpackage a module of app/ is in, or "top:NAME" for a top-level module."""
    rel = path.relative_to(APP)
    return rel.parts[0] if len(rel.parts) > 1 else "top:" + path.stem


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every procscope import of the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "procscope":
                out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "procscope"]
    return out


def _target(module: str, name: str | None) -> str | None:
    """Where `from module import name` (or `import module`) lands: a subpackage, a
    top-level module ("top:NAME"), or None for the lessons and the page's data."""
    parts = module.split(".")[1:]
    if not parts and name is not None:
        parts = [name]
    if not parts or parts[0] in ("experiments", "static", "templates"):
        return None
    return parts[0] if (APP / parts[0]).is_dir() else "top:" + parts[0]


def test_each_subpackage_imports_only_those_below_it() -> None:
    wrong = []
    for path in sorted(APP.rglob("*.py")):
        here = _place(path)
        for module, names in _imports(path):
            wanted: list[str | None] = [*names] or [None]
            for name in wanted:
                there = _target(module, name)
                if there is None or there == here:
                    continue
                if here.startswith("top:"):
                    ok = here[4:] in ENTRY_POINTS or there.startswith("top:")
                elif there.startswith("top:"):
                    ok = there[4:] not in ENTRY_POINTS
                else:
                    ok = ORDER.index(there) > ORDER.index(here)
                if not ok:
                    wrong.append(f"{path.relative_to(ROOT)}: {here} imports {module} "
                                 f"({name or ''}) from {there}")
    assert wrong == []
    # Every subpackage on disk is in the picture, and at most 12 modules sit at the top.
    assert sorted(p.name for p in APP.iterdir() if (p / "__init__.py").exists()) == sorted(ORDER)
    assert len(list(APP.glob("*.py"))) <= 12


def test_no_module_imports_another_modules_private_names() -> None:
    private = [f"{path.relative_to(ROOT)}: {module}.{name}"
               for path in sorted(APP.rglob("*.py")) for module, names in _imports(path)
               for name in names if name.startswith("_") and not name.startswith("__")]
    assert private == []
