"""Patching multiprocessing's modules as they are imported, not before.

Runs in every process of a traced run (app.pipe.prims.install). Standard library only.

A finder first on sys.meta_path answers only for the modules in PATCHES: it lets the
other finders find the module, and has the module's own loader patch it right after it
has run (the loader object is the module's: its `exec_module` is wrapped on that one
object). A module already imported when the hook is installed is patched at once. A
program that never imports them never pays for them: no multiprocessing module is
imported here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Patch = Callable[[ModuleType], None]
_DONE = "_procscope_prims_patched"


class PatchOnImport:
    """A meta path finder for the modules in `patches` (module name -> its patch)."""

    def __init__(self, patches: dict[str, Patch]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        patch = self.patches.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader: Any = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            apply(module, patch)

        loader.exec_module = exec_and_patch
        return spec


def apply(module: ModuleType, patch: Patch) -> None:
    if getattr(module, _DONE, False):
        return
    setattr(module, _DONE, True)
    patch(module)


def install(patches: dict[str, Patch]) -> None:
    """Patch each module now if it is imported, else when it is (once per process)."""
    if any(isinstance(f, PatchOnImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, PatchOnImport(patches))
    for name, patch in patches.items():
        module = sys.modules.get(name)
        if module is not None:
            apply(module, patch)
