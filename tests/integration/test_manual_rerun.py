"""`celery -A provisioner call provisioner.steps.<step> --args '["<run_id>"]'` on a live worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.models import RunStatus, StepStatus
from tests.conftest import QUEUE
from tests.helpers import (
    assert_exactly_one_of_each,
    engine_documents,
    events_of,
    new_tenant,
    start,
    wait_run,
)
from tests.workers import ROOT

pytestmark = pytest.mark.integration
CELERY = str(Path(sys.executable).parent / "celery")
STEP = "create_walk_in_customer"


def celery_call(step: str, run_id: object, **kwargs: object) -> str:
    """The operator's command, as typed in a shell; returns the task id it prints."""
    command = [CELERY, "-A", "provisioner", "call", f"provisioner.steps.{step}",
               "--args", json.dumps([str(run_id)]), "--queue", QUEUE]  # fmt: skip
    if kwargs:
        command += ["--kwargs", json.dumps(kwargs)]
    done = subprocess.run(
        command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def manual_attempt_done(name: str, manual_attempts: int):
    def done(run) -> bool:
        step = run.step(name)
        settled = step.status not in (StepStatus.RUNNING, StepStatus.RETRYING)
        return step.manual_attempts == manual_attempts and settled

    return done


def test_rerun_of_one_step_of_a_completed_run(app_ctx, worker, sim, engine):
    tenant = new_tenant()
    run = wait_run(start(tenant))
    assert run.status == RunStatus.COMPLETED
    before = engine_documents(engine, tenant.name)
    first_finish = run.finished_at
    others = {s.name: s.attempts for s in run.steps if s.name != STEP}

    # The engine is busy once: the manual attempt is retried like any other.
    sim.add_fault(kind="error", status=503, exc_type="SessionStopped", method="GET",
                  path="^/api/resource/Customer$", count=1)  # fmt: skip

    task_id = celery_call(STEP, run.id)
    run = wait_run(run.id, until=manual_attempt_done(STEP, 2))

    step = run.step(STEP)
    assert (step.status, step.attempts, step.manual_attempts) == ("completed", 3, 2)
    assert step.task_id == task_id
    assert step.started_at > first_finish  # this attempt's own times, not the first one's
    assert step.result["created"] is False  # the customer was found, not made again
    assert len(events_of(run.id, kind="step_retrying", step=STEP)) == 1
    rerun = events_of(run.id, kind="manual_rerun", step=STEP)
    assert [e.attempt for e in rerun] == [2, 3]
    # Nothing else ran (no event of another step since), and the run is as it was.
    assert {e.step for e in events_of(run.id) if e.id > rerun[0].id} == {STEP}
    assert events_of(run.id)[-1].kind == "step_completed"
    assert {s.name: s.attempts for s in run.steps if s.name != STEP} == others
    assert (run.status, run.progress) == (RunStatus.COMPLETED, 100)
    assert engine_documents(engine, tenant.name) == before


def test_rerun_of_a_failed_step_then_with_resume(app_ctx, worker, sim, engine):
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST",
                  path="^/api/resource/Warehouse$", message="warehouse refused")  # fmt: skip
    tenant = new_tenant()
    run = wait_run(start(tenant))
    assert run.status == RunStatus.FAILED
    assert run.step("create_warehouses").status == StepStatus.FAILED
    sim.clear_faults()

    # Without resume: exactly that step; the ones after it stay not reached.
    celery_call("create_warehouses", run.id)
    run = wait_run(run.id, until=manual_attempt_done("create_warehouses", 1))
    assert run.step("create_warehouses").status == StepStatus.COMPLETED
    position = run.step("create_warehouses").position
    later = [s for s in run.steps if s.position > position and s.planned]
    assert {s.status for s in later} == {StepStatus.NOT_REACHED}
    assert all(s.attempts == 0 for s in later)
    assert run.status == RunStatus.FAILED
    assert engine_documents(engine, tenant.name)["Main Store"] == 1

    # With resume: the rest of the plan follows, and the run completes.
    celery_call("create_warehouses", run.id, resume=True)
    run = wait_run(run.id, timeout=90, until=lambda r: r.status == RunStatus.COMPLETED)
    warehouses = run.step("create_warehouses")
    assert (warehouses.attempts, warehouses.manual_attempts) == (3, 2)
    assert all(run.step(s.name).status == StepStatus.COMPLETED for s in later)
    assert len(events_of(run.id, kind="manual_rerun")) == 2
    assert len(events_of(run.id, kind="run_resumed")) == 1
    assert_exactly_one_of_each(engine, tenant.name)
