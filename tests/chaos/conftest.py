"""Chaos scenarios: N tenants (CHAOS_TENANTS, 20 in `make test`, 200 in `make chaos`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import current_app
from sqlalchemy.exc import DBAPIError

from provisioner.extensions import db
from provisioner.models import Run, RunStatus, StepStatus
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.orchestration import outages, runs
from tests.helpers import assert_exactly_one_of_each, periodic, steps_of

TENANTS = int(os.environ.get("CHAOS_TENANTS", "20"))
# How long the whole scenario may take: generous, it only bounds a hang.
DEADLINE = float(os.environ.get("CHAOS_DEADLINE", str(120 + TENANTS * 3)))
RESULTS = Path(__file__).resolve().parents[2] / "artifacts" / "chaos" / "results.jsonl"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Write what a scenario saw to artifacts/chaos/results.jsonl (docs/RELIABILITY.md
    quotes these lines); called at the end of a scenario, after its checks passed."""
    started = time.monotonic()

    def write(**figures: Any) -> None:
        line = {
            "scenario": request.node.name,
            "tenants": TENANTS,
            "seconds": round(time.monotonic() - started, 1),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **figures,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as out:
            out.write(json.dumps(line, default=str) + "\n")
        print(line)

    return write


def wait_all_final(run_ids: list[Any], timeout: float = DEADLINE, tick: Any = None) -> list[Run]:
    """Poll until every run is final, calling `tick()` between polls (the chaos loop), and
    the engine probe every ENGINE_PROBE_TICK s, as beat does."""
    deadline = time.monotonic() + timeout
    probe = beat_probe()
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
        probe()
        time.sleep(0.5)


def hold(seconds: float) -> None:
    """Let `seconds` pass with beat's engine probe running, as it would meanwhile."""
    probe = beat_probe()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        probe()
        time.sleep(0.5)


def beat_probe() -> Callable[[], None]:
    """The engine probe's beat task, at most once per its schedule when called in a loop."""
    schedule = current_app.config["CELERY"]["beat_schedule"]["engine-probe"]["schedule"]
    return periodic(outages.tick, schedule)


def settle_failures(found: list[Run], rounds: int = 3) -> tuple[list[Run], list[str]]:
    """What an operator does after a storm of engine faults: continue failed runs.

    Returns the runs and how each continued one had ended (e.g. "failed at create_company").
    """
    continued: list[str] = []
    for _ in range(rounds):
        failed = [r for r in found if r.status != RunStatus.COMPLETED]
        if not failed:
            break
        for run in failed:
            stopped = next((s.name for s in run.steps if s.status == StepStatus.FAILED), "?")
            continued.append(f"{run.status} at {stopped}")
            runs.resume(run.id, "chaos-operator", kind="continue")
        found = wait_all_final([r.id for r in found])
    return found, continued


def assert_engine_exact(engine, names: list[str]) -> None:
    """Against the engine's own REST API: exactly one of each document per tenant."""
    for name in names:
        assert_exactly_one_of_each(engine, name)
