"""How long one attempt of a step may take: its soft time limit, and its hard one.

A step declares its worst case (`Step.time_budget`: engine calls, per-site lock waits, long
calls); the settings price it (timeouts, the throttle's slot wait, the lock timeout), and a
delivery may first wait for an earlier one to fall silent (`execution.CLAIM_GRACE_SECONDS`).
The limits travel with each message (`chain.step_signature`); the task's own defaults, the
same figures from the worker's settings, serve a `celery call`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.orchestration.dispatch import time_limits
from provisioner.orchestration.execution import CLAIM_GRACE_SECONDS
from provisioner.steps.base import Costs, Step


def step_limits(step: Step, config: Mapping[str, Any]) -> tuple[float, float]:
    call = config["ENGINE_CONNECT_TIMEOUT"] + config["ENGINE_READ_TIMEOUT"]
    if config["ENGINE_MAX_CONCURRENCY"]:
        call += config["ENGINE_SLOT_WAIT"]
    costs = Costs(call=call, lock_wait=config["SITE_LOCK_TIMEOUT"])
    claim_wait = config["STALE_AFTER"] + CLAIM_GRACE_SECONDS
    return time_limits(step.time_budget(costs) + claim_wait)
