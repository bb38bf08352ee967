"""The catalogue of lessons: experiment id -> the module that runs it.

Modules are imported on demand: a spawned worker imports only its own lesson's module.
"""

from __future__ import annotations

import importlib
import os

from experiments.spec import Experiment

EXPERIMENTS: dict[str, str] = {
    "join": "experiments.join",
    "ticket_rush": "experiments.ticket_rush",
    "process_start": "experiments.process_start",
    "daemon": "experiments.daemon",
    "zombie_orphan": "experiments.zombie_orphan",
    "terminate": "experiments.terminate",
    "queue_basics": "experiments.queue_basics",
    "producer_consumer": "experiments.producer_consumer",
    "pool_apply": "experiments.pool_apply",
    "pool_callback": "experiments.pool_callback",
    "executor_map": "experiments.executor_map",
    "socket_server": "experiments.socket_server",
    "gil": "experiments.gil",
}

if os.environ.get("PROCSCOPE_SELFTEST"):
    # Not lessons: one that raises (failure handling) and a load generator (bench/).
    EXPERIMENTS["fails"] = "experiments.fails"
    EXPERIMENTS["flood"] = "experiments.flood"


def load(experiment_id: str) -> Experiment:
    """The experiment's spec; an unknown id is an error that lists the valid ones."""
    try:
        module_name = EXPERIMENTS[experiment_id]
    except KeyError:
        valid = ", ".join(sorted(EXPERIMENTS))
        raise KeyError(f"unknown experiment {experiment_id!r}; valid: {valid}") from None
    spec: Experiment = importlib.import_module(module_name).SPEC
    return spec
