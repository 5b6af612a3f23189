"""The only code that changes the state of a run, a step or a site job.

Callers hold the row lock (`lock_run`, `lock_job`) for the whole change, so the API, the
workers, the CLI and the watchdog never interleave on one run or job. Every change is
checked against the state machines in `states.py` and leaves an event in the log of its
run or job; run changes are noted for `changes.commit()`, which announces them.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import joinedload

from provisioner.extensions import db
from provisioner.models import (
    JobStatus,
    ProvisioningStatus,
    Run,
    RunEvent,
    RunStatus,
    RunStep,
    SiteJob,
    SiteJobEvent,
    StepStatus,
    Tenant,
)
from provisioner.models.status import (
    FINAL_RUN_STATUSES,
    UNDER_WAY_STEP_STATUSES,
    UNFINISHED_STEP_STATUSES,
)
from provisioner.models.types import utcnow
from provisioner.orchestration import changes, states

# A failed step counts as settled only when it is not critical: the run went on without it.
_SETTLED = (StepStatus.COMPLETED, StepStatus.SKIPPED)

Model = TypeVar("Model", Run, Tenant, SiteJob)

_TENANT_STATUS = {
    RunStatus.PENDING: ProvisioningStatus.PROVISIONING,
    RunStatus.IN_PROGRESS: ProvisioningStatus.PROVISIONING,
    RunStatus.COMPLETED: ProvisioningStatus.PROVISIONED,
    RunStatus.PARTIAL: ProvisioningStatus.PARTIAL,
    RunStatus.FAILED: ProvisioningStatus.FAILED,
}


# -- row locks --------------------------------------------------------------------------------


def lock_run(run_id: uuid.UUID | str) -> Run | None:
    """Load a run with its tenant and steps, the tenant's row and the run's own row locked
    until the transaction ends.

    Every change of any run of a tenant takes the tenant's row lock first (a start takes it
    too), so changes of one tenant's runs happen one at a time and in one lock order: no
    deadlock between a start, a retry and a worker, and no race on "one active run".
    Two statements: the tenant's row (found through the run), then the run's row with its
    tenant and steps joined, read once the tenant's lock is held.
    """
    key = as_uuid(run_id)
    tenant_of_run = select(Run.tenant_id).where(Run.id == key).scalar_subquery()
    if db.session.execute(_locked(Tenant, Tenant.id == tenant_of_run)).scalar_one_or_none() is None:
        return None
    stmt = (
        _locked(Run, Run.id == key)
        .options(joinedload(Run.tenant), joinedload(Run.steps))
        .with_for_update(of=Run)
    )
    return db.session.execute(stmt).unique().scalar_one_or_none()


def lock_tenant(tenant_id: uuid.UUID) -> Tenant:
    return db.session.execute(_locked(Tenant, Tenant.id == tenant_id)).scalar_one()


def lock_job(job_id: uuid.UUID | str) -> SiteJob | None:
    """Load a site job with its row locked until the transaction ends."""
    return db.session.execute(_locked(SiteJob, SiteJob.id == as_uuid(job_id))).scalar_one_or_none()


def _locked(model: type[Model], condition: ColumnElement[bool]) -> Select[Model]:
    return (
        select(model).where(condition).with_for_update().execution_options(populate_existing=True)
    )


# -- runs and steps ---------------------------------------------------------------------------


def event(
    run: Run,
    kind: str,
    *,
    step: RunStep | None = None,
    message: str | None = None,
    duration_ms: int | None = None,
    data: dict[str, Any] | None = None,
) -> RunEvent:
    if run.id is None:  # a run declared in this transaction gets its id on flush
        db.session.flush()
    entry = RunEvent(
        run_id=run.id,
        step=step.name if step else None,
        kind=kind,
        status=(step.status if step else run.status),
        attempt=step.attempts if step else None,
        message=message,
        duration_ms=duration_ms,
        data=data,
        created_at=utcnow(),
    )
    db.session.add(entry)
    changes.noted(run)
    return entry


def set_run_status(run: Run, target: RunStatus, reason: str | None = None) -> None:
    states.check(states.RUN_TRANSITIONS, "run", run.status, target, reason)
    run.status = target
    now = utcnow()
    if target == RunStatus.IN_PROGRESS and run.started_at is None:
        run.started_at = now
    if target in (RunStatus.PENDING, RunStatus.IN_PROGRESS):
        run.finished_at = None
    else:
        run.finished_at = now
        run.current_step = None
    sync_tenant(run)
    if target in FINAL_RUN_STATUSES:
        changes.finished(run)


def set_step_status(step: RunStep, target: StepStatus, note: str | None = None) -> None:
    states.check(states.STEP_TRANSITIONS, "step", step.status, target)
    # Retries and take-overs go on with the step's attempt; a settled step starts afresh.
    resumed = step.status in UNDER_WAY_STEP_STATUSES
    step.status = target
    now = utcnow()
    if target == StepStatus.RUNNING:
        step.started_at = step.started_at if resumed and step.started_at else now
        step.finished_at = None
        step.duration_ms = None
        step.heartbeat_at = now
        step.next_attempt_at = None
    elif target == StepStatus.PENDING:
        step.started_at = step.finished_at = step.duration_ms = None
        step.next_attempt_at = None
        step.error = None
        step.note = note
    elif target in (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED):
        step.finished_at = now
        step.next_attempt_at = None
        if step.started_at is not None:
            step.duration_ms = int((now - step.started_at).total_seconds() * 1000)
    if target not in UNFINISHED_STEP_STATUSES:
        step.waiting_since = None  # settled: a later wait for the engine starts afresh
    if note is not None:
        step.note = note


def mark_not_reached(run: Run, after: RunStep, why: str) -> None:
    """Steps after `after` that will not run now say so, instead of looking pending."""
    for step in run.steps:
        if step.position > after.position and step.status == StepStatus.PENDING:
            set_step_status(step, StepStatus.NOT_REACHED, why)
            event(run, "step_not_reached", step=step, message=why)


def settle(run: Run) -> None:
    """Recompute progress and current step; finish the run once no step is left to run."""
    total = len(run.steps) or 1
    done = sum(1 for s in run.steps if s.status in _SETTLED or _failed_softly(s))
    run.progress = min(100, done * 100 // total)
    unfinished = [s for s in run.steps if s.status in UNFINISHED_STEP_STATUSES]
    if unfinished:
        run.current_step = unfinished[0].name
        return
    if run.status not in (RunStatus.PENDING, RunStatus.IN_PROGRESS):
        return
    outcome = final_status(run)
    if run.status == RunStatus.PENDING:  # nothing was left to run at all
        set_run_status(run, RunStatus.IN_PROGRESS)
    set_run_status(run, outcome)
    if outcome in (RunStatus.COMPLETED, RunStatus.PARTIAL):
        run.progress = 100
    event(run, f"run_{outcome.lower()}", message=summary(run))


def final_status(run: Run) -> RunStatus:
    if any(s.status == StepStatus.FAILED and s.critical for s in run.steps):
        return RunStatus.FAILED
    if any(s.status in (StepStatus.NOT_REACHED, StepStatus.CANCELLED) for s in run.steps):
        return RunStatus.FAILED
    # Skipped by a person, or failed without stopping the run: not everything was made.
    if any(
        s.status == StepStatus.FAILED or (s.status == StepStatus.SKIPPED and s.planned)
        for s in run.steps
    ):
        return RunStatus.PARTIAL
    return RunStatus.COMPLETED


def summary(run: Run) -> str:
    counts: dict[str, int] = {}
    for step in run.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def sync_tenant(run: Run) -> None:
    """Keep the tenant's provisioning_status true to its latest run."""
    tenant = run.tenant
    if run.status in _TENANT_STATUS:
        tenant.provisioning_status = _TENANT_STATUS[run.status]
        return
    # Cancelled: the workspace is as provisioned as its last finished run made it.
    previous = db.session.execute(
        select(Run.status)
        .where(
            Run.tenant_id == run.tenant_id,
            Run.id != run.id,
            Run.status.in_([RunStatus.COMPLETED, RunStatus.PARTIAL]),
        )
        .order_by(Run.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    tenant.provisioning_status = (
        _TENANT_STATUS[RunStatus(previous)] if previous else ProvisioningStatus.NOT_PROVISIONED
    )


def _failed_softly(step: RunStep) -> bool:
    return step.status == StepStatus.FAILED and not step.critical


# -- site jobs --------------------------------------------------------------------------------


def set_job_status(job: SiteJob, target: JobStatus, message: str | None = None) -> None:
    states.check(states.JOB_TRANSITIONS, "job", job.status, target)
    job.status = target
    now = utcnow()
    if target == JobStatus.PENDING:
        job.started_at = job.finished_at = None
    elif target == JobStatus.RUNNING:
        job.started_at = job.started_at or now
    else:
        job.finished_at = now
    if message is not None:
        job.message = message


def job_event(job: SiteJob, kind: str, message: str) -> None:
    if job.id is None:  # a job declared in this transaction gets its id on flush
        db.session.flush()
    db.session.add(SiteJobEvent(job_id=job.id, kind=kind, message=message, created_at=utcnow()))


def add_job_event(job_id: uuid.UUID | str, kind: str, message: str) -> None:
    """An event on its own, committed at once (a worker's output lines as they come)."""
    db.session.add(
        SiteJobEvent(job_id=as_uuid(job_id), kind=kind, message=message, created_at=utcnow())
    )
    changes.commit()


def as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
