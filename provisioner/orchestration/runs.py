"""Commands people and programs give a run: start, retry, continue, skip, cancel.

Each one changes the database in one transaction under the run's (or tenant's) row lock,
with the audit entry of whoever asked, commits, and only then publishes work to the broker.
If publishing fails, the change is undone and `QueueUnavailable` goes up (the API answers
503): nothing is left half-made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from provisioner.errors import Conflict, PlanError
from provisioner.extensions import db
from provisioner.models import Run, RunStatus, RunStep, StepStatus, Tenant, latest_run
from provisioner.models.status import (
    ACTIVE_RUN_STATUSES,
    UNDER_WAY_STEP_STATUSES,
    UNFINISHED_STEP_STATUSES,
)
from provisioner.models.types import utcnow
from provisioner.orchestration import audit, chain, changes, plans
from provisioner.orchestration.dispatch import Undo
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
        progress=0,
        meta=dict(previous.meta) if previous else {},
        started_by=actor,
        created_at=utcnow(),
    )
    for position, name in enumerate(names, start=1):
        definition = BY_NAME[name]
        skip = definition.skip_reason(options)
        run.steps.append(
            RunStep(
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
        changes.rollback()
        if ONE_ACTIVE_RUN not in str(exc.orig):
            raise
        raise Conflict("a run is already active for this workspace") from None
    to_run = _pending(run)

    def undo() -> None:  # after publish_or_undo locked the run (and its tenant) again
        db.session.delete(run)
        audit.forget(locked, target=run.id)
        locked.provisioning_status = prior_status
        changes.tenant_reshown(locked)

    chain.publish_or_undo(run, to_run, undo)
    return run


def _declare(run: Run, request: StartRequest, names: Sequence[str], actor: str) -> None:
    """Write the new run's state, events and audit entry and commit (IntegrityError if one
    is active already)."""
    sync_tenant(run)
    event(run, "run_created", message=f"{request.plan} plan, {len(names)} steps, by {actor}")
    to_run = _pending(run)
    if not to_run:
        settle(run)
    _stamp_queued(run, to_run)
    audit.record(run.tenant, actor, "start", run.id, plan=request.plan, options=request.options)
    changes.commit()


def resume(
    run_id: Any,
    actor: str,
    *,
    kind: str,
    step_name: str | None = None,
    details: Mapping[str, Any] | None = None,
    dry_run: bool = False,
) -> Run:
    """`retry` / `continue`: rerun what failed or was not reached, keep what completed.

    With `step_name` (retry only) that step is rerun even if it completed, then the rest.
    Only a workspace's latest run is resumed: checked under its tenant's lock, which a start
    takes too. `details` go into the audit entry (a bulk continue's filters); `dry_run`
    makes every check and refusal, then changes nothing.
    """
    run = _locked(run_id)
    newest = latest_run(run.tenant_id)
    if newest is not None and newest.id != run.id:
        changes.rollback()
        raise Conflict(
            f"a newer run of this workspace exists; a {kind} acts only on the latest one",
            run_id=str(newest.id),
            status=newest.status,
        )
    if run.status not in RESUMABLE:
        changes.rollback()
        raise Conflict(f"the run is {run.status}; there is nothing to {kind}", status=run.status)
    undo = _undo(run)
    if step_name is not None:
        target = _step(run, step_name)
        if target.status != StepStatus.PENDING:
            set_step_status(target, StepStatus.PENDING, f"rerun asked by {actor}")
    for step in run.steps:
        if step.status in RERUNNABLE:
            set_step_status(step, StepStatus.PENDING)
    to_run = _pending(run)
    if not to_run:
        changes.rollback()
        raise Conflict(f"no step of this run needs a {kind}", status=run.status)
    if dry_run:
        changes.rollback()
        return run
    set_run_status(run, RunStatus.PENDING)
    settle(run)
    event(run, f"run_{kind}", message=f"{kind} by {actor}: {', '.join(s.name for s in to_run)}")
    noted = {**({"step": step_name} if step_name else {}), **(details or {})}
    audit.record(run.tenant, actor, kind, run.id, **noted)
    _commit_and_publish(run, to_run, undo)
    return run


def skip(run_id: Any, step_name: str, actor: str) -> Run:
    """Skip an optional or non-critical step; if it was under way, the run goes on without it."""
    run = _locked(run_id)
    step = _step(run, step_name)
    if step.critical and not step.optional:
        changes.rollback()
        raise Conflict(
            f"{step.name} is critical: the run cannot go on without it", status=step.status
        )
    if step.status in (StepStatus.COMPLETED, StepStatus.SKIPPED):
        changes.rollback()
        raise Conflict(f"{step.name} is already {step.status}", status=step.status)
    undo = _undo(run)
    interrupted = step.status in UNDER_WAY_STEP_STATUSES
    revoked, publication = step.task_id, chain.dispatch_key(run)
    step.task_id = None  # a late answer of the interrupted task must not count
    set_step_status(step, StepStatus.SKIPPED, f"skipped by {actor}")
    event(run, "step_skipped", step=step, message=f"skipped by {actor}")
    to_run: list[RunStep] = []
    if run.status in ACTIVE_RUN_STATUSES:
        if interrupted:
            to_run = _pending(run)
            _stamp_queued(run, to_run)
        settle(run)
    audit.record(run.tenant, actor, "skip", run.id, step=step_name)
    changes.commit()
    if interrupted and revoked:
        chain.revoke_publication(publication, [revoked])
    chain.publish_or_undo(run, to_run, undo)
    return run


def cancel(run_id: Any, actor: str) -> Run:
    """Stop the run: no further step starts, the running task is revoked."""
    run = _locked(run_id)
    if run.status not in ACTIVE_RUN_STATUSES:
        changes.rollback()
        raise Conflict(
            f"the run is {run.status}; only a pending or running run can be cancelled",
            status=run.status,
        )
    task_ids = [s.task_id for s in run.steps if s.task_id and s.status in UNFINISHED_STEP_STATUSES]
    publication = chain.dispatch_key(run)
    for step in run.steps:
        if step.status in UNDER_WAY_STEP_STATUSES:
            set_step_status(step, StepStatus.CANCELLED, f"cancelled by {actor}")
            event(run, "step_cancelled", step=step, message=f"cancelled by {actor}")
        elif step.status == StepStatus.PENDING:
            set_step_status(step, StepStatus.NOT_REACHED, "the run was cancelled")
    set_run_status(run, RunStatus.CANCELLED)
    event(run, "run_cancelled", message=f"cancelled by {actor}")
    audit.record(run.tenant, actor, "cancel", run.id)
    changes.commit()
    chain.revoke_publication(publication, task_ids)
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
    undo = _undo(run)
    if run.status not in ACTIVE_RUN_STATUSES:
        for step in later:
            if step.status in RERUNNABLE:
                set_step_status(step, StepStatus.PENDING)
    to_run = [s for s in later if s.status == StepStatus.PENDING]
    if not to_run:
        changes.rollback()
        return
    if run.status not in ACTIVE_RUN_STATUSES:
        set_run_status(run, RunStatus.PENDING)
    settle(run)
    event(run, "run_resumed", message=f"after {step_name}, by {actor}")
    _commit_and_publish(run, to_run, undo)


# -- helpers -------------------------------------------------------------------------------


def _refuse_if_active(tenant: Tenant) -> None:
    active = db.session.execute(
        select(Run.id, Run.status).where(
            Run.tenant_id == tenant.id, Run.status.in_(ACTIVE_RUN_STATUSES)
        )
    ).first()
    if active is not None:
        changes.rollback()
        raise Conflict(
            "a run is already active for this workspace",
            run_id=str(active.id),
            status=active.status,
        )


def _completed_steps(tenant: Tenant) -> set[str]:
    rows = db.session.execute(
        select(RunStep.name)
        .join(Run)
        .where(Run.tenant_id == tenant.id, RunStep.status == StepStatus.COMPLETED)
        .distinct()
    )
    return set(rows.scalars())


def _locked(run_id: Any) -> Run:
    run = lock_run(run_id)
    if run is None:
        raise LookupError(f"run {run_id} not found")
    return run


def _step(run: Run, name: str) -> RunStep:
    for step in run.steps:
        if step.name == name:
            return step
    changes.rollback()
    raise PlanError("step", f"{name} is not a step of this run")


def _pending(run: Run) -> list[RunStep]:
    return [s for s in run.steps if s.status == StepStatus.PENDING]


def _undo(run: Run) -> Any:
    """Put the run, its steps and tenant back as they are now (a new version of its state)."""
    saved = Undo(run, run.tenant, *run.steps)

    def undo() -> None:  # after publish_or_undo locked the run again
        saved()
        changes.noted(run)

    return undo


def _commit_and_publish(run: Run, to_run: list[RunStep], undo: Any) -> None:
    """Commit a resumed run (the database refuses a second active run) and publish it."""
    _stamp_queued(run, to_run)
    try:
        changes.commit()
    except IntegrityError:
        changes.rollback()
        raise Conflict("another run is already active for this workspace") from None
    chain.publish_or_undo(run, to_run, undo)


def _stamp_queued(run: Run, steps: list[RunStep]) -> None:
    chain.assign_task_ids(steps)
    if steps:
        run.queued_at = utcnow()
