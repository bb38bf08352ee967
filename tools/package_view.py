"""The installed layout of a checkout, built from links: VIEW/procscope -> app/,
VIEW/procscope/experiments -> experiments/, ... as [tool.setuptools.package-dir] maps them.

For what finds modules by path only, not through an editable install's import hook: mypy
(tools.typecheck), and an earlier checkout first on PYTHONPATH (bench.trees). A tree from
before the mapping existed has none: `module()` then names its top-level package `app`.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

SKIP = {"__pycache__"}


def mapping(root: Path) -> dict[str, str]:
    """{package: folder} from the checkout's pyproject.toml; {} for a tree without one."""
    with open(root / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    dirs: dict[str, str] = project.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return dirs


def module(root: Path) -> str:
    """The name `python -m` runs the server of this checkout by."""
    return "procscope" if "procscope" in mapping(root) else "app"


def build(root: Path, view: Path) -> Path:
    """Links under `view` that import as the installed package does; `view` is made anew."""
    root = root.resolve()
    shutil.rmtree(view, ignore_errors=True)
    dirs = mapping(root)
    for package in sorted(dirs, key=lambda p: p.count(".")):
        source = root / dirs[package]
        target = view.joinpath(*package.split("."))
        nested = [p for p in dirs if p.startswith(package + ".")]
        if not nested:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source, target_is_directory=True)
            continue
        target.mkdir(parents=True)
        taken = {p.split(".")[package.count(".") + 1] for p in nested}
        for entry in source.iterdir():
            if entry.name not in SKIP and entry.name not in taken:
                (target / entry.name).symlink_to(entry)
    return view
