"""A real procscope server for the benchmarks, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
import psutil

from tools import package_view
from tools.processes import end

ROOT = Path(__file__).resolve().parent.parent


def tree_env(root: Path) -> dict[str, str]:
    """The environment of a process that must import `procscope` from the tree at `root`:
    its package view (tools.package_view) first on the path, before the editable install of
    this tree."""
    view = package_view.build(root, root / ".cache" / "package-view")
    return dict(os.environ, PROCSCOPE_SELFTEST="1", PYTHONPATH=str(view))


class BenchServer:
    """`python -m procscope` with the bench-only experiments enabled (PROCSCOPE_SELFTEST=1), from
    the tree at `root` (this one, or an earlier commit's worktree: bench.trees)."""

    def __init__(self, *args: str, root: Path = ROOT,
                 command: tuple[str, ...] = ("-m", "procscope")) -> None:
        """`command`: what python runs, given the server's options (bench.stream_paths
        serves procscope through another stream path)."""
        self.root = root
        self.command = command
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args

    def __enter__(self) -> BenchServer:
        env = tree_env(self.root)
        self.proc = subprocess.Popen(
            [sys.executable, *self.command, "--port", str(self.port), "--log-level", "warning",
             "--max-runs", "50", "--db", ":memory:", *self.args],
            cwd=self.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url + "/api/status", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("bench server did not start") from None
                time.sleep(0.05)

    def rss(self) -> int:
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        end(self.proc, 15)
