"""Commands people and programs give a run: start, retry, continue, skip, cancel.

Each one changes the database in one transaction under the run's (or tenant's) row lock,
commits, and only then publishes work to the broker. If publishing fails, the change is
undone and `QueueUnavailable` goes up (the API answers 503): nothing is left half-made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from provisioner.extensions import db
from provisioner.models import Run, RunStatus, Step, StepStatus, Tenant
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.orchestration import audit, chain, plans
from provisioner.orchestration.errors import Conflict
from provisioner.orchestration.transitions import (
    event,
    lock_run,
    lock_tenant,
    set_run_status,
    set_step_status,
    settle,
    sync_tenant,
)
from provisioner.steps import BY_NAME
from provisioner.steps.base import RunOptions

ONE_ACTIVE_RUN = "uq_provisioning_runs_one_active_per_tenant"
RESUMABLE = (RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.CANCELLED)
RERUNNABLE = (StepStatus.FAILED, StepStatus.NOT_REACHED, StepStatus.CANCELLED)


@dataclass(frozen=True)
class StartRequest:
    plan: str = "FULL_POS"
    steps: Sequence[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


def run_options(options: dict[str, Any]) -> RunOptions:
    known = RunOptions.__dataclass_fields__
    return RunOptions(**{k: v for k, v in options.items() if k in known})


def latest_run(tenant_id: Any) -> Run | None:
    return db.session.execute(
        select(Run).where(Run.tenant_id == tenant_id).order_by(Run.created_at.desc()).limit(1)
    ).scalar_one_or_none()


def start(tenant: Tenant, request: StartRequest, actor: str) -> Run:
    """Declare a run with all its steps, commit, then publish its chain."""
    locked = lock_tenant(tenant.id)
    _refuse_if_active(locked)
    names = plans.resolve(request.plan, request.steps, _completed_steps(locked))
    previous = latest_run(locked.id)
    options = run_options(request.options)
    run = Run(
        tenant=locked,
        plan=request.plan,
        options=request.options,
        status=RunStatus.PENDING,
        meta=dict(previous.meta) if previous else {},
        started_by=actor,
        created_at=utcnow(),
    )
    for position, name in enumerate(names, start=1):
        definition = BY_NAME[name]
        skip = definition.skip_reason(options)
        run.steps.append(
            Step(
                name=name,
                position=position,
                critical=definition.critical,
                optional=definition.optional,
                planned=skip is None,
                status=StepStatus.SKIPPED if skip else StepStatus.PENDING,
                note=skip,
                attempts=0,
                manual_attempts=0,
            )
        )
    db.session.add(run)
    prior_status = locked.provisioning_status
    try:
        _declare(run, request, names, actor)
    except IntegrityError as exc:
        db.session.rollback()
        if ONE_ACTIVE_RUN not in str(exc.orig):
            raise
        raise Conflict("a run is already active for this workspace") from None
    to_run = _pending(run)

    def undo() -> None:
        tenant_row = db.session.get(Tenant, locked.id)
        db.session.delete(db.session.get(Run, run.id))
        audit.forget(locked, target=run.id)
        tenant_row.provisioning_status = prior_status

    _publish_or_undo(run, to_run, undo)
    return run


def _declare(run: Run, request: StartRequest, names: list[str], actor: str) -> None:
    """Write the new run's state and events and commit (IntegrityError if one is active)."""
    sync_tenant(run)
    event(run, "run_created", message=f"{request.plan} plan, {len(names)} steps, by {actor}")
    to_run = _pending(run)
    if not to_run:
        settle(run)
    _stamp_queued(run, to_run)
    audit.record(run.tenant, actor, "start", run.id, plan=request.plan, options=request.options)
    db.session.commit()


def resume(run_id: Any, actor: str, *, kind: str, step_name: str | None = None) -> Run:
    """`retry` / `continue`: rerun what failed or was not reached, keep what completed.

    With `step_name` (retry only) that step is rerun even if it completed, then the rest.
    """
    run = _locked(run_id)
    if run.status not in RESUMABLE:
        db.session.rollback()
        raise Conflict(f"the run is {run.status}; there is nothing to {kind}", status=run.status)
    undo = _snapshot(run)
    if step_name is not None:
        target = _step(run, step_name)
        if target.status != StepStatus.PENDING:
            set_step_status(target, StepStatus.PENDING, f"rerun asked by {actor}")
    for step in run.steps:
        if step.status in RERUNNABLE:
            set_step_status(step, StepStatus.PENDING)
    to_run = _pending(run)
    if not to_run:
        db.session.rollback()
        raise Conflict(f"no step of this run needs a {kind}", status=run.status)
    set_run_status(run, RunStatus.PENDING)
    settle(run)
    event(run, f"run_{kind}", message=f"{kind} by {actor}: {', '.join(s.name for s in to_run)}")
    _commit_and_publish(run, to_run, undo)
    return run


def skip(run_id: Any, step_name: str, actor: str) -> Run:
    """Skip an optional or non-critical step; if it was under way, the run goes on without it."""
    run = _locked(run_id)
    step = _step(run, step_name)
    if step.critical and not step.optional:
        db.session.rollback()
        raise Conflict(
            f"{step.name} is critical: the run cannot go on without it", status=step.status
        )
    if step.status in (StepStatus.COMPLETED, StepStatus.SKIPPED):
        db.session.rollback()
        raise Conflict(f"{step.name} is already {step.status}", status=step.status)
    undo = _snapshot(run)
    interrupted = step.status in (StepStatus.RUNNING, StepStatus.RETRYING)
    revoked, dispatch = step.task_id, chain.dispatch_key(run)
    step.task_id = None  # a late answer of the interrupted task must not count
    set_step_status(step, StepStatus.SKIPPED, f"skipped by {actor}")
    event(run, "step_skipped", step=step, message=f"skipped by {actor}")
    to_run: list[Step] = []
    if run.status in ACTIVE_RUN_STATUSES:
        if interrupted:
            to_run = _pending(run)
            _stamp_queued(run, to_run)
        settle(run)
    db.session.commit()
    if interrupted and revoked:
        chain.revoke(dispatch, [revoked], terminate=True)
    _publish_or_undo(run, to_run, undo)
    return run


def cancel(run_id: Any, actor: str) -> Run:
    """Stop the run: no further step starts, the running task is revoked."""
    run = _locked(run_id)
    if run.status not in ACTIVE_RUN_STATUSES:
        db.session.rollback()
        raise Conflict(
            f"the run is {run.status}; only a pending or running run can be cancelled",
            status=run.status,
        )
    task_ids = [s.task_id for s in run.steps if s.task_id and s.status in _LIVE]
    dispatch = chain.dispatch_key(run)
    for step in run.steps:
        if step.status in (StepStatus.RUNNING, StepStatus.RETRYING):
            set_step_status(step, StepStatus.CANCELLED, f"cancelled by {actor}")
            event(run, "step_cancelled", step=step, message=f"cancelled by {actor}")
        elif step.status == StepStatus.PENDING:
            set_step_status(step, StepStatus.NOT_REACHED, "the run was cancelled")
    set_run_status(run, RunStatus.CANCELLED)
    event(run, "run_cancelled", message=f"cancelled by {actor}")
    db.session.commit()
    chain.revoke(dispatch, task_ids, terminate=True)
    return run


def follow_on(run_id: Any, step_name: str, actor: str) -> None:
    """After a manual rerun: publish the rest of the plan after that step.

    On a finished run the steps after it that failed or were not reached are rerun and the
    run becomes active again; on an active run (whose chain the manual rerun took over)
    the pending steps after it get a new chain.
    """
    run = _locked(run_id)
    position = _step(run, step_name).position
    later = [s for s in run.steps if s.position > position]
    undo = _snapshot(run)
    if run.status not in ACTIVE_RUN_STATUSES:
        for step in later:
            if step.status in RERUNNABLE:
                set_step_status(step, StepStatus.PENDING)
    to_run = [s for s in later if s.status == StepStatus.PENDING]
    if not to_run:
        db.session.rollback()
        return
    if run.status not in ACTIVE_RUN_STATUSES:
        set_run_status(run, RunStatus.PENDING)
    settle(run)
    event(run, "run_resumed", message=f"after {step_name}, by {actor}")
    _commit_and_publish(run, to_run, undo)


# -- helpers -------------------------------------------------------------------------------

_LIVE = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.RETRYING)


def _refuse_if_active(tenant: Tenant) -> None:
    active = db.session.execute(
        select(Run.id, Run.status).where(
            Run.tenant_id == tenant.id, Run.status.in_(ACTIVE_RUN_STATUSES)
        )
    ).first()
    if active is not None:
        db.session.rollback()
        raise Conflict(
            "a run is already active for this workspace",
            run_id=str(active.id),
            status=active.status,
        )


def _completed_steps(tenant: Tenant) -> set[str]:
    rows = db.session.execute(
        select(Step.name)
        .join(Run)
        .where(Run.tenant_id == tenant.id, Step.status == StepStatus.COMPLETED)
        .distinct()
    )
    return set(rows.scalars())


def _locked(run_id: Any) -> Run:
    run = lock_run(run_id)
    if run is None:
        raise LookupError(f"run {run_id} not found")
    return run


def _step(run: Run, name: str) -> Step:
    for step in run.steps:
        if step.name == name:
            return step
    db.session.rollback()
    raise plans.PlanError("step", f"{name} is not a step of this run")


def _pending(run: Run) -> list[Step]:
    return [s for s in run.steps if s.status == StepStatus.PENDING]


def _commit_and_publish(run: Run, to_run: list[Step], undo: Any) -> None:
    """Commit a resumed run (the database refuses a second active run) and publish it."""
    _stamp_queued(run, to_run)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("another run is already active for this workspace") from None
    _publish_or_undo(run, to_run, undo)


def _stamp_queued(run: Run, steps: list[Step]) -> None:
    chain.assign_task_ids(steps)
    if steps:
        run.queued_at = utcnow()


def _snapshot(run: Run) -> Any:
    """Remember the run, its steps and tenant as they are, to put back if publishing fails."""
    rows = [run, run.tenant, *run.steps]
    saved = [
        (type(row), row.id, {a.key: getattr(row, a.key) for a in inspect(row).mapper.column_attrs})
        for row in rows
    ]

    def undo() -> None:
        for model, key, values in saved:
            row = db.session.get(model, key)
            for name, value in values.items():
                setattr(row, name, value)

    return undo


def _publish_or_undo(run: Run, steps: list[Step], undo: Any) -> None:
    try:
        chain.publish(run, steps)
    except chain.QueueUnavailable:
        lock_run(run.id)
        undo()
        db.session.commit()
        raise
