"""The catalogue of lessons: experiment id -> the module that runs it.

Modules are imported on demand: a spawned worker imports only its own lesson's module.
"""

from __future__ import annotations

import importlib
import os

from procscope.experiments.spec import Experiment

EXPERIMENTS: dict[str, str] = {
    "join": "procscope.experiments.join",
    "ticket_rush": "procscope.experiments.ticket_rush",
    "process_start": "procscope.experiments.process_start",
    "daemon": "procscope.experiments.daemon",
    "zombie_orphan": "procscope.experiments.zombie_orphan",
    "terminate": "procscope.experiments.terminate",
    "queue_basics": "procscope.experiments.queue_basics",
    "producer_consumer": "procscope.experiments.producer_consumer",
    "pool_apply": "procscope.experiments.pool_apply",
    "pool_callback": "procscope.experiments.pool_callback",
    "executor_map": "procscope.experiments.executor_map",
    "socket_server": "procscope.experiments.socket_server",
    "gil": "procscope.experiments.gil",
}

if os.environ.get("PROCSCOPE_SELFTEST"):
    # Not lessons: one that raises (failure handling) and a load generator (bench/).
    EXPERIMENTS["fails"] = "procscope.experiments.fails"
    EXPERIMENTS["flood"] = "procscope.experiments.flood"
if os.environ.get("PROCSCOPE_SELFTEST_PRIMS"):
    # Not a lesson: one whose primitives report on their own (its spec's instrument_prims),
    # for tests/test_prims.py only (the catalogue the other tests see is unchanged).
    EXPERIMENTS["prims_selftest"] = "procscope.experiments.prims_selftest"


def load(experiment_id: str) -> Experiment:
    """The experiment's spec; an unknown id is an error that lists the valid ones."""
    try:
        module_name = EXPERIMENTS[experiment_id]
    except KeyError:
        valid = ", ".join(sorted(EXPERIMENTS))
        raise KeyError(f"unknown experiment {experiment_id!r}; valid: {valid}") from None
    spec: Experiment = importlib.import_module(module_name).SPEC
    return spec
