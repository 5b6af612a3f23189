"""Chaos scenarios: N tenants (CHAOS_TENANTS, 20 in `make test`, 200 in `make chaos`)."""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy.exc import DBAPIError

from provisioner.extensions import db
from provisioner.models import Run, RunStatus
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.orchestration import runs
from tests.helpers import assert_exactly_one_of_each, steps_of

TENANTS = int(os.environ.get("CHAOS_TENANTS", "20"))
# How long the whole scenario may take: generous, it only bounds a hang.
DEADLINE = float(os.environ.get("CHAOS_DEADLINE", str(120 + TENANTS * 3)))


def wait_all_final(run_ids: list[Any], timeout: float = DEADLINE, tick: Any = None) -> list[Run]:
    """Poll until every run is final, calling `tick()` between polls (the chaos loop)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.session.expire_all()
            found = [db.session.get(Run, run_id) for run_id in run_ids]
        except DBAPIError:  # the database is restarting: ask again
            db.session.rollback()
            time.sleep(0.5)
            continue
        active = [r for r in found if r.status in ACTIVE_RUN_STATUSES]
        if not active:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(active)} runs not final after {timeout:.0f} s, e.g. "
                f"{active[0].id}: {steps_of(active[0])}"
            )
        if tick:
            tick()
        time.sleep(0.5)


def settle_failures(found: list[Run], rounds: int = 3) -> list[Run]:
    """What an operator does after a storm of engine faults: continue failed runs."""
    for _ in range(rounds):
        failed = [r for r in found if r.status != RunStatus.COMPLETED]
        if not failed:
            return found
        for run in failed:
            runs.resume(run.id, "chaos-operator", kind="continue")
        found = wait_all_final([r.id for r in found])
    return found


def assert_engine_exact(engine, names: list[str]) -> None:
    """Against the engine's own REST API: exactly one of each document per tenant."""
    for name in names:
        assert_exactly_one_of_each(engine, name)
