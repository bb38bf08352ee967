"""What the server's routes and lifespan ask of its run manager, whichever it is.

Runs in the server, on its event loop. Two classes satisfy it: app.live.runs.RunManager
(one server, its runs in memory or in --db) and app.cluster.cluster_runs.ClusterRuns (one
replica of several, with --redis). app.web.main makes one and keeps it as app.state.runs;
nothing asks which one it is: where they differ, the answer is a method's
(history_status, cluster_status).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from procscope.kernel.sampler import Sampler
from procscope.live.run_record import Run
from procscope.pipe.events import Event
from procscope.pipe.relay import Relay
from procscope.streams.hub import Hub


class RunOwner(Protocol):
    """The one owner of the server's runs: their records, logs, caps and verbs."""

    runs: dict[str, Run]  # every run known, in id order
    hub: Hub  # their logs
    relay: Relay  # reads the runs' pipes; a server event of a run goes in through it
    sampler: Sampler  # the kernel sampler of live runs
    max_runs: int
    max_processes: int
    max_events: int
    on_created: list[Callable[[Run], None]]  # told of each run as it starts, on the loop

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...

    def create(self, experiment: str, params: dict[str, Any]) -> Run: ...

    async def cancel(self, run_id: str, reason: str = "cancelled") -> Run: ...

    def forget(self, run_id: str) -> None: ...

    async def written(self) -> None: ...

    def next_id(self) -> str: ...

    def adopt(self, run: Run, events: Sequence[Event]) -> Run: ...

    # app.trace.program_socket's (its ProgramRuns): runs of `procscope trace`.
    def create_program(self, program: dict[str, Any], peer_pid: int) -> tuple[Run, int]: ...

    def follow_program(self, run_id: str, pid: int) -> bool: ...

    def program_exited(self, run_id: str, exitcode: int | None) -> None: ...

    def history_status(self) -> dict[str, Any]:
        """/api/status's `history`: where runs are kept, and how that goes."""
        ...

    def cluster_status(self) -> dict[str, Any] | None:
        """/api/status's `cluster`: this replica, the others and Redis; None without one."""
        ...
