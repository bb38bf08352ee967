"""The README's picture of a traced program: docs/trace.png, from a real run.

    python -m tools.trace_picture

Runs in its own process: starts `python -m procscope` on a free loopback port (history in
memory, a runtime directory of its own, so that `procscope trace` finds this server and no
other), runs `python -m procscope trace tests/data/trace/every_primitive.py` to its end,
opens the run's page in the page tests' Chromium at 1280x800, zooms to the stretch where the
program's objects are used, and saves the picture. Exit code 1 if it could not be made.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

import httpx

from procscope.pipe.ledger import FINAL
from tools.gallery import ROOT, server

# The page tests' Chromium, imported by path as tools.gallery imports it.
sys.path.insert(0, str(ROOT / "tests"))
from browser import chromium  # noqa: E402

PROGRAM = ROOT / "tests" / "data" / "trace" / "every_primitive.py"
PICTURE = ROOT / "docs" / "trace.png"
RUN_LINE = re.compile(r"^procscope trace: run (\d+): ", re.M)

# The window shown: from a little before the first object's first use to the run's end.
FOCUS = """() => {
  const m = procscope.panels[0].model;
  const first = Math.min(...m.objects.tracks().map((o) => o.firstT ?? Infinity));
  const t0 = Math.max(0, first - 0.03);
  procscope.view.focus(t0, m.endT + (m.endT - t0) * 0.02);
  procscope.redraw();
}"""


def main() -> int:
    with tempfile.TemporaryDirectory() as runtime:
        os.chmod(runtime, 0o700)
        os.environ["PROCSCOPE_RUNTIME_DIR"] = runtime  # the server's, and trace's below
        with server() as url, chromium() as browser:
            done = subprocess.run([sys.executable, "-m", "procscope", "trace", PROGRAM.name],
                                  cwd=PROGRAM.parent, capture_output=True, text=True,
                                  timeout=120, stdin=subprocess.DEVNULL)
            match = RUN_LINE.search(done.stderr)
            if done.returncode != 0 or not match:
                print(f"the traced program failed ({done.returncode}): {done.stderr}")
                return 1
            run_id = match.group(1)
            deadline = time.monotonic() + 30
            while httpx.get(f"{url}/api/runs/{run_id}").json()["status"] not in FINAL:
                if time.monotonic() > deadline:
                    print(f"run {run_id} did not end")
                    return 1
                time.sleep(0.1)
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.goto(f"{url}/runs/{run_id}")
            page.wait_for_function("procscope.panels.length === 1 && "
                                   "procscope.panels[0].resultReady")
            page.mouse.move(1, 1)  # no tooltip in the picture
            seen = page.evaluate("procscope.frames")
            page.evaluate(FOCUS)
            page.wait_for_function("seen => procscope.frames > seen", arg=seen)
            PICTURE.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(PICTURE))
            context.close()
            if errors:
                print("; ".join(errors))
                return 1
    print(f"{PICTURE.relative_to(ROOT)}: {PICTURE.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
