"""What if? A token holder kills, pauses or resumes one process of a live run from its lane.

Runs in the server, on its event loop. Only a process of that run: the pid must be in the
run's process group (its main's pid, app.live.runs) as the kernel says right before the signal,
so no other process of the machine, the server's included, can be reached through here.
Only the teacher's token (app.web.guard: the viewer link's POST is 403). Each signal is an
event of the run's log (`proc.signal`, on the target's lane), stamped by the relay like the
server's other events, so every page sees what was done and when: a Pool that loses a
task, a Lock whose holder died (the page says that everyone else waits forever), a
consumer that stops.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from procscope.live.run_owner import RunOwner
from procscope.live.said import Problem, error_answers, said
from procscope.pipe.events import server_event
from procscope.pipe.ledger import FINAL

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP, "SIGCONT": signal.SIGCONT}

router = APIRouter(prefix="/api", responses=error_answers(400, 401, 403))


class SignalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pid: int = Field(gt=1, lt=2**22, description="a process of the run (its lane's pid)")
    signal: Literal["SIGKILL", "SIGSTOP", "SIGCONT"] = Field(
        description="kill it, pause it, or let it go on")


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except (ProcessLookupError, PermissionError):
        return False


def _not_ours(pid: int, why: str) -> HTTPException:
    """A 422 shaped as FastAPI's own (its schema is the route's): the field and what is wrong."""
    return HTTPException(422, [{"type": "value_error", "loc": ["body", "pid"], "msg": why,
                                "input": pid}])


@router.post("/runs/{run_id}/signal", summary="Kill, pause or resume one process of a live run",
             responses={**error_answers(404, 413, 415),
                        409: {"model": Problem, "description": "The run has ended"}})
async def signal_process(request: Request, run_id: str,
                         body: Annotated[SignalRequest, Body()]) -> dict[str, Any]:
    manager: RunOwner = request.app.state.runs
    run = manager.runs.get(run_id)
    if run is None:
        raise HTTPException(404, said("no run %(run)s", run=repr(run_id)))
    if run.status in FINAL or run.pid is None:
        raise HTTPException(409, said("run %(run)s is %(status)s: nothing to signal",
                                      run=run_id, status=run.status))
    if body.pid == os.getpid() or not _in_group(body.pid, run.pid):
        raise _not_ours(body.pid, said("pid %(pid)s is not a process of run %(run)s",
                                       pid=body.pid, run=run_id))
    # Stamped before the kill: the signal comes before what it causes. Stamped after, a
    # preempted server could put a SIGKILL after the exit it caused (the page would then
    # not see that the killed buyer still held the Lock when the signal was sent).
    sent_ns = time.monotonic_ns()
    try:
        os.kill(body.pid, SIGNALS[body.signal])
    except ProcessLookupError:
        raise _not_ours(body.pid, said("pid %(pid)s has exited", pid=body.pid)) from None
    manager.relay.inject(run_id, [server_event(
        "proc.signal", {"signal": body.signal, "target": body.pid, "by": "teacher"},
        t_ns=sent_ns, pid=body.pid)])
    return {"run": run_id, "pid": body.pid, "signal": body.signal}
