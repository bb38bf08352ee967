"""The lesson gallery: one screenshot per lesson at its key moment, from a real run drawn
in a real Chromium at 1280x720 (presenter mode), into docs/gallery/<lesson>.png.

    python -m tools.gallery            # every lesson
    python -m tools.gallery join gil   # some
    python -m tools.gallery --out DIR  # elsewhere

Runs in its own process: starts `python -m procscope` on a free loopback port (history in
memory), starts the lessons' runs at their defaults (a small time_scale), opens each
finished run's page, waits until the page has zoomed to the lesson's key moments and drawn
them, and saves the picture. Exit code 1 if any lesson's picture could not be made.
tests/test_lesson_pictures.py uses the same runs and the same waits (`LESSONS`, `shown`).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page

from procscope.pipe.ledger import FINAL

ROOT = Path(__file__).resolve().parent.parent
# The same Chromium as the page tests, imported by path as pytest imports it (`browser`,
# not `tests.browser`): under tests/test_lesson_pictures.py it is then one module.
sys.path.insert(0, str(ROOT / "tests"))
from browser import chromium  # noqa: E402

GALLERY = ROOT / "docs" / "gallery"

# Each lesson at its defaults, faster: time_scale scales every sleep of a lesson (gil's
# work is CPU-seconds, not a sleep: it gets less of it instead).
LESSONS: dict[str, dict[str, Any]] = {
    "process_start": {"time_scale": 0.2},
    "join": {"time_scale": 0.2},
    "daemon": {"time_scale": 0.2},
    "zombie_orphan": {"time_scale": 0.2},
    "terminate": {"time_scale": 0.2},
    "ticket_rush": {"time_scale": 0.1},
    "queue_basics": {"time_scale": 0.2},
    "producer_consumer": {"time_scale": 0.2},
    "pool_apply": {"time_scale": 0.1},
    "pool_callback": {"time_scale": 0.2},
    "executor_map": {"time_scale": 0.1},
    "socket_server": {"time_scale": 0.2},
    "gil": {"work": 0.4},
}

# Lessons whose point is a race or a share of the cores: each runs alone (the others
# sleep, and run five at a time). Two cores shared with four other runs would let gil's
# processes use a fraction of them, the child print before '主', a killed child die before
# is_alive() asks, and the clients of socket_server wait as long for the main's threads as
# for a free pool process.
ALONE = ("process_start", "terminate", "socket_server", "gil")

# Shown: every run over, its result in, its last events drawn, and (for a lesson with key
# moments that were found) the view on them and the moments drawn.
SHOWN = """(n) => {
  const ps = procscope.panels;
  return ps.length === n && ps.every(p => p.resultReady && p.pendingCount === 0 &&
      p.timeline.drawnVersion === p.model.version &&
      (!p.keyWindow || (procscope.view.mode === "free" &&
                        p.timeline.momentPx.length === p.timeline.moments.length)));
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(*args: str) -> Iterator[str]:
    """A procscope server on a free loopback port; its URL. Stopped (and waited for) after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "procscope", "--port", str(port), "--log-level",
                             "warning", "--db", ":memory:", *args], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/api/experiments", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_runs(url: str, lessons: list[str], at_once: int = 5,
               timeout: float = 120) -> dict[str, dict[str, Any]]:
    """Run the lessons (`at_once` at a time, so that 2 cores are not swamped; those in
    ALONE one by one); each one's final run JSON, by lesson."""
    done: dict[str, dict[str, Any]] = {}
    alone = [[lesson] for lesson in lessons if lesson in ALONE]
    rest = [lesson for lesson in lessons if lesson not in ALONE]
    batches = alone + [rest[i:i + at_once] for i in range(0, len(rest), at_once)]
    with httpx.Client(base_url=url, timeout=30) as client:
        for batch in batches:
            ids = {}
            for lesson in batch:
                r = client.post("/api/runs", json={"experiment": lesson,
                                                   "params": LESSONS.get(lesson, {})})
                r.raise_for_status()
                ids[lesson] = r.json()["id"]
            deadline = time.monotonic() + timeout
            for lesson, run_id in ids.items():
                while True:
                    run = client.get(f"/api/runs/{run_id}").json()
                    if run["status"] in FINAL or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                done[lesson] = run
    return done


def open_shown(browser: Browser, url: str, run_id: Any, errors: list[str] | None = None,
               present: bool = True, count: int = 1) -> Page:
    """The run's page at 1280x720 (`run_id` may say `N?compare=M`: then `count` is 2), once
    it shows the runs at their key moments."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: errors.append(f"console: {m.text}")
                if m.type == "error" else None)
    sep = "&" if "?" in str(run_id) else "?"
    page.goto(f"{url}/runs/{run_id}{sep + 'present=1' if present else ''}")
    page.wait_for_function(SHOWN, arg=count, timeout=60_000)
    page.mouse.move(1, 1)  # no tooltip in the picture
    seen = page.evaluate("procscope.frames")
    page.evaluate("procscope.redraw()")
    page.wait_for_function("seen => procscope.frames > seen", arg=seen)
    return page


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.gallery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="some lessons (default: every lesson)")
    parser.add_argument("--out", type=Path, default=GALLERY,
                        help="the folder of the pictures (default: docs/gallery)")
    args = parser.parse_args(argv)
    lessons, out = args.lessons or list(LESSONS), args.out.resolve()
    unknown = sorted(set(lessons) - set(LESSONS))
    if unknown:
        print(f"unknown lesson(s) {', '.join(unknown)}; valid: {', '.join(LESSONS)}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    started = time.monotonic()
    with server("--max-runs", "8") as url, chromium() as browser:
        runs = start_runs(url, lessons)
        for lesson in lessons:
            run = runs[lesson]
            errors: list[str] = []
            try:
                if run["status"] != "succeeded":
                    raise RuntimeError(f"the run {run['status']}")
                page = open_shown(browser, url, run["id"], errors)
                path = out / f"{lesson}.png"
                page.screenshot(path=str(path))
                page.context.close()
                if errors:
                    raise RuntimeError("; ".join(errors))
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                print(f"{shown}: {path.stat().st_size // 1024} KiB")
            except Exception as e:  # one lesson's failure must not hide the others'
                failed.append(lesson)
                print(f"{lesson}: no picture: {e}")
    print(f"{len(lessons) - len(failed)} of {len(lessons)} pictures in "
          f"{time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
