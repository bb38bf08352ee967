"""How a run's core lanes are drawn: exact (the kernel's switch records) or sampled.

Runs in the server: `choose_cpu_lanes` once at start (--cpu-lanes), `follow` for each run
as its main waits at the gate (app.live.launcher).
"""

from __future__ import annotations

import logging
import time

from procscope.kernel.sampler import Sampler
from procscope.kernel.switches import SwitchRecorder, availability
from procscope.pipe.events import server_event
from procscope.pipe.relay import Relay

log = logging.getLogger("procscope.kernel.cpu_lanes")


def choose_cpu_lanes(wanted: str) -> dict[str, str]:
    """How the core lanes are drawn: `exact` (the kernel's switch records), or `sampled`.

    `auto` takes exact where the kernel allows and says why not otherwise; `exact` where
    the kernel does not allow it is an error (the teacher asked for it: tell them now).
    `wanted` is one of the three: app.settings.Settings refuses any other.
    """
    if wanted == "sampled":
        return {"mode": "sampled", "detail": "sampled from /proc (--cpu-lanes sampled)"}
    ok, reason = availability()
    if ok:
        return {"mode": "exact", "detail": reason}
    if wanted == "exact":
        raise RuntimeError(f"--cpu-lanes exact: {reason}")
    return {"mode": "sampled", "detail": f"sampled from /proc: {reason}"}


def follow(sampler: Sampler, relay: Relay, cpu_lanes: dict[str, str], run_id: str,
           main_pid: int, t0_ns: int) -> None:
    """Start following a run's main before its gate opens: exactly, where we can.

    The recorder is opened while the main is still one thread with no child (it waits at
    app.live.launcher's gate), so no switch of the run is missed; the run is told how its core
    lanes are drawn (`cpu.lanes`).
    """
    lanes = dict(cpu_lanes)
    recorder = None
    if lanes["mode"] == "exact":
        recorder = SwitchRecorder()
        try:
            recorder.open(main_pid)
        except (OSError, ValueError) as e:
            recorder.close()
            recorder = None
            lanes = {"mode": "sampled", "detail": f"the kernel's switch records could "
                     f"not be opened for this run ({e}): core lanes are sampled"}
            log.warning("run %s: %s", run_id, lanes["detail"])
    if recorder is not None and not recorder.exit_tails:
        lanes["detail"] += ("; each process's last ~1 ms (its exit teardown) is not drawn: "
                            f"{recorder.wide_refused}")
    sampler.watch(run_id, main_pid, t0_ns, recorder)
    relay.inject(run_id, [server_event("cpu.lanes", lanes, t_ns=time.monotonic_ns())])
