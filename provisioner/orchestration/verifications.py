"""Verifications of workspaces (asked for, carried out by a worker, recorded) and repairs.

A verification reads, with engine GETs only, what every step that completed in the tenant's
runs made: each such step's `verify`, given the options and metadata of the tenant's latest
run. It records one check per document and an outcome: `drifted` when a document is missing
or changed, whatever else could not be read (that drift is certain and a repair can mend it;
what could not be read is in the checks and the error summary); else `failed` when a document
could not be read; else `ok`.

One pending or running verification per tenant (a partial unique index, and every
declaration holds the tenant's row lock): asking again while one is under way answers that
one. As for runs: declare, commit, then publish the task (`provisioner.verify`, its id
chosen up front); if the broker refuses it, the declaration is undone and QueueUnavailable
goes up. A worker's delivery does something only while the row expects its task id.

A repair is a run of plan REPAIR: the steps the latest verification found drifted, and the
steps they require that are not satisfied, with `repair` in its options. When a REPAIR run
ends, a verification is declared in the same transaction (`connect()`), and with
VERIFY_AUTO_REPAIR a drifted verification starts a repair by itself (not one that followed
a repair: a drift that a repair cannot mend must not loop).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from celery.canvas import Signature
from flask import current_app
from sqlalchemy import ColumnElement, and_, delete, select, update

from provisioner import signals
from provisioner.engine import EngineClient
from provisioner.errors import Conflict, QueueUnavailable
from provisioner.extensions import db
from provisioner.models import (
    ProvisioningStatus,
    Run,
    Tenant,
    TenantStatus,
    Verification,
    VerificationStatus,
    latest_run,
    latest_verification,
)
from provisioner.models.status import FINAL_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.models.verification import (
    ACTIVE_VERIFICATION_STATUSES,
    FINISHED_VERIFICATION_STATUSES,
)
from provisioner.orchestration import audit, changes, context, dispatch, plans, runs
from provisioner.orchestration.transitions import lock_tenant
from provisioner.signals import Changes
from provisioner.steps import BY_NAME, STEP_NAMES
from provisioner.steps.base import Check, CheckState, MissingPrerequisite, StepContext
from provisioner.webhooks import deliveries

log = logging.getLogger(__name__)

TASK = "provisioner.verify"
SCHEDULE = "schedule"  # `requested_by` of the verifications the schedule asks for
AUTO_REPAIR = "auto-repair"  # `started_by` of the repairs VERIFY_AUTO_REPAIR starts
KEPT = 30  # verifications kept per tenant; older ones are deleted as new ones finish
DRIFT = (CheckState.MISSING, CheckState.CHANGED)
# Workspaces the schedule verifies and the metrics count: provisioned, site not archived.
PROVISIONED = (ProvisioningStatus.PROVISIONED, ProvisioningStatus.PARTIAL)


class NothingToRepair(Conflict):
    """The latest verification is not `drifted` (409 `nothing_to_repair`)."""


@dataclass(frozen=True)
class Requested:
    verification: Verification
    created: bool  # False: one was pending or running already, and it is this one


@dataclass(frozen=True)
class Claim:
    """What a delivery that may run a verification needs: built before the claim commits."""

    verification_id: uuid.UUID
    ctx: StepContext  # its engine counts the calls made
    steps: tuple[str, ...]  # completed in the tenant's runs, in plan order


@dataclass(frozen=True)
class Findings:
    checks: list[Check]
    reads: int  # engine calls made


class CountingClient(EngineClient):
    """The tenant's engine client, counting the calls it makes (what a verification cost)."""

    def __init__(self, engine: EngineClient) -> None:
        connect, read = engine.timeout
        super().__init__(engine.credentials, connect_timeout=connect, read_timeout=read)
        self.calls = 0

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        self.calls += 1
        return super()._request(method, path, **kw)


# -- asking -----------------------------------------------------------------------------------


def request(tenant: Tenant, actor: str) -> Requested:
    """Declare a verification, commit, then publish its task (or answer the active one)."""
    locked = lock_tenant(tenant.id)
    active = _active(locked.id)
    if active is not None:
        changes.rollback()
        return Requested(active, created=False)
    if not runs._completed_steps(locked):
        changes.rollback()
        raise Conflict(
            "nothing to verify yet: no provisioning step of this workspace has completed",
            provisioning_status=locked.provisioning_status,
        )
    verification, previous = _declare(locked, actor)
    if actor != SCHEDULE:  # the schedule's are in the verifications' own history
        audit.record(locked, actor, "verify", verification.id)
    new_id, task_id, tenant_id, slug = verification.id, verification.task_id, locked.id, locked.slug
    changes.commit()

    def undo() -> None:  # after publish_or_undo locked the tenant again
        db.session.execute(delete(Verification).where(Verification.id == new_id))
        if previous is not None:
            db.session.execute(_set_latest(previous, latest=True))
        audit.forget(locked, target=new_id)

    dispatch.publish_or_undo(
        _signature(new_id, task_id, slug), lambda: lock_tenant(tenant_id), undo
    )
    return Requested(verification, created=True)


def connect() -> None:
    """Verify a workspace whenever a REPAIR run of it ends (in the transaction that ends it)."""
    signals.changes_committing.connect(_after_repairs)


def _after_repairs(changes_: Changes) -> None:
    for run in changes_.finished:
        if run.plan == plans.REPAIR and run.status in FINAL_RUN_STATUSES:
            declared = _declare_after(run)
            if declared is not None:
                work = _signature(declared.id, declared.task_id, run.tenant.slug)
                changes_.after_commit(partial(_publish_quietly, work))


def _declare_after(run: Run) -> Verification | None:
    """A verification of what the repair left (the tenant's row is locked by the run's change).

    One still pending reads the engine after this commit anyway; one already reading may
    have read before the repair's writes, so it is superseded (its result will be ignored).
    """
    active = _active(run.tenant_id)
    if active is not None and active.status == VerificationStatus.PENDING:
        return None
    if active is not None:
        _finish(active, VerificationStatus.FAILED, error=f"superseded: repair run {run.id} ended")
    verification, _ = _declare(run.tenant, f"repair run {run.id}", after_run_id=run.id)
    return verification


def _declare(
    tenant: Tenant, requested_by: str, *, after_run_id: uuid.UUID | None = None
) -> tuple[Verification, uuid.UUID | None]:
    """A new pending verification, the tenant's latest from now on; and the previous latest."""
    previous = db.session.execute(
        select(Verification.id).where(Verification.tenant_id == tenant.id, Verification.latest)
    ).scalar_one_or_none()
    if previous is not None:
        db.session.execute(_set_latest(previous, latest=False))
    verification = Verification(
        tenant_id=tenant.id,
        status=VerificationStatus.PENDING,
        latest=True,
        requested_by=requested_by,
        after_run_id=after_run_id,
        task_id=str(uuid.uuid4()),
        checks=[],
        created_at=utcnow(),
    )
    db.session.add(verification)
    db.session.flush()
    return verification, previous


def _signature(verification_id: uuid.UUID, task_id: str | None, slug: str) -> Signature:
    soft, hard = time_limits(current_app.config)
    return dispatch.celery_app().signature(
        TASK,
        args=(str(verification_id),),
        kwargs={"tenant": slug},  # a label for Flower and the logs
        task_id=task_id,
        soft_time_limit=soft,
        time_limit=hard,
    )


def time_limits(config: Mapping[str, Any]) -> tuple[float, float]:
    """A verification's soft time limit (VERIFY_TIME_LIMIT: it is then recorded failed) and
    its hard one. They travel with each message, so the process that asks sets them."""
    return dispatch.time_limits(float(config["VERIFY_TIME_LIMIT"]))


def _publish_quietly(work: Signature) -> None:
    """Publish after a commit that cannot be undone; a lost one is failed by the schedule."""
    try:
        dispatch.publish(work)
    except QueueUnavailable:
        log.warning("verification %s not published; the schedule fails it as lost", work.args[0])


# -- carrying it out (the worker) -------------------------------------------------------------


def claim(verification_id: str, task_id: str) -> Claim | None:
    """Mark the verification running if it is this delivery's to run (else None)."""
    verification = db.session.execute(
        select(Verification).where(Verification.id == uuid.UUID(verification_id)).with_for_update()
    ).scalar_one_or_none()
    # Running too: a redelivery (its worker lost, or a broker's visibility timeout). Reading
    # twice is harmless; only the first result is recorded.
    reason = _not_ours(verification, task_id)
    if verification is None or reason:
        changes.rollback()
        log.info("verification delivery not run: %s", reason)
        return None
    tenant = db.session.get(Tenant, verification.tenant_id)
    run = latest_run(verification.tenant_id)
    if tenant is None or run is None:  # cannot happen while the tenant's rows cascade
        changes.rollback()
        return None
    completed = runs._completed_steps(tenant)
    ctx = context.for_tenant(tenant, dict(run.options or {}), dict(run.meta or {}))
    found = Claim(
        verification.id,
        replace(ctx, engine=CountingClient(ctx.engine)),
        tuple(name for name in STEP_NAMES if name in completed),
    )
    verification.status = VerificationStatus.RUNNING
    verification.started_at = utcnow()
    verification.run_id = run.id
    changes.commit()
    return found


def inspect(found: Claim) -> Findings:
    """Every completed step's checks, read from the engine (no database, no writes)."""
    checks: list[Check] = []
    for name in found.steps:
        try:
            checks.extend(BY_NAME[name].verify(found.ctx))
        except MissingPrerequisite as exc:  # the run's metadata lacks what the step made
            checks.append(Check(name, "", "", CheckState.UNKNOWN, message=str(exc)))
    engine = found.ctx.engine
    return Findings(checks, engine.calls if isinstance(engine, CountingClient) else 0)


def record(verification_id: str, task_id: str, findings: Findings) -> VerificationStatus | None:
    """Record what was found, its webhook deliveries with it; then, with VERIFY_AUTO_REPAIR,
    repair a drift. None when the verification is no longer this task's (superseded)."""
    checks = findings.checks
    status = outcome(checks)
    recorded = _record(verification_id, task_id, status, checks=checks, reads=findings.reads,
                       error=unreadable(checks))  # fmt: skip
    if recorded is None:
        return None
    if status == VerificationStatus.DRIFTED:
        _auto_repair(*recorded)
    return status


def fail(verification_id: str, task_id: str, error: str) -> None:
    """The verification could not be carried out (time limit, unexpected error)."""
    _record(verification_id, task_id, VerificationStatus.FAILED, error=error)


def outcome(checks: Iterable[Check]) -> VerificationStatus:
    states = {check.state for check in checks}
    if states & set(DRIFT):
        return VerificationStatus.DRIFTED
    if CheckState.UNKNOWN in states:
        return VerificationStatus.FAILED
    return VerificationStatus.OK


def unreadable(checks: list[Check]) -> str | None:
    """What could not be read, in plain words (None when everything was read)."""
    unknown = [check for check in checks if check.state == CheckState.UNKNOWN]
    if not unknown:
        return None
    return f"{len(unknown)} of {len(checks)} documents could not be checked: {unknown[0].message}"


def _record(
    verification_id: str,
    task_id: str,
    status: VerificationStatus,
    *,
    checks: list[Check] | None = None,
    reads: int | None = None,
    error: str | None = None,
) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """Write the outcome under the tenant's row lock, then hand its deliveries over; the
    tenant's id and the run that asked for it, or None if it is not this task's any more."""
    key = uuid.UUID(verification_id)
    tenant_id = db.session.execute(
        select(Verification.tenant_id).where(Verification.id == key)
    ).scalar_one_or_none()
    if tenant_id is None:
        changes.rollback()
        return None
    tenant = lock_tenant(tenant_id)
    verification = db.session.execute(
        select(Verification)
        .where(Verification.id == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    reason = _not_ours(verification, task_id, (VerificationStatus.RUNNING,))
    if verification is None or reason:
        changes.rollback()
        log.info("verification result ignored: %s", reason)
        return None
    verification.checks = [check.as_dict() for check in checks or []]
    verification.tally = tally(verification.checks)
    verification.engine_reads = reads
    _finish(verification, status, error=error)
    drifted = status == VerificationStatus.DRIFTED
    ids = _drift_deliveries(verification, tenant.slug) if drifted else []
    _prune(tenant_id)
    asked_by_run = verification.after_run_id
    changes.commit()
    if ids:
        deliveries.enqueue(ids)
    return tenant_id, asked_by_run


def _finish(verification: Verification, status: VerificationStatus, *, error: str | None) -> None:
    verification.status = status
    verification.error = error
    verification.checked_at = utcnow()


def tally(checks: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for check in checks:
        counts[check["step"]][check["state"]] += 1
    return {step: dict(states) for step, states in counts.items()}


def _drift_deliveries(verification: Verification, slug: str) -> list[str]:
    """`workspace.drifted` to the workspace's webhooks, unless the last verification that
    read everything it could (ok or drifted) found exactly this drift already."""
    before = db.session.execute(
        select(Verification.status, Verification.checks)
        .where(
            Verification.tenant_id == verification.tenant_id,
            Verification.id != verification.id,
            Verification.status.in_([VerificationStatus.OK, VerificationStatus.DRIFTED]),
        )
        .order_by(Verification.created_at.desc())
        .limit(1)
    ).first()
    if (
        before is not None
        and before.status == VerificationStatus.DRIFTED
        and (drifted_keys(before.checks) == drifted_keys(verification.checks))
    ):
        return []
    return deliveries.add_deliveries(
        verification.tenant_id,
        deliveries.DRIFTED,
        partial(deliveries.drifted_payload, verification, slug),
    )


def drifted_keys(checks: list[dict[str, Any]] | None) -> set[tuple[str, str, str, str]]:
    return {
        (c["step"], c["doctype"], c["name"], c["state"])
        for c in checks or []
        if c["state"] in DRIFT
    }


def _prune(tenant_id: uuid.UUID) -> None:
    kept = (
        select(Verification.id)
        .where(Verification.tenant_id == tenant_id)
        .order_by(Verification.created_at.desc())
        .limit(KEPT)
        .subquery()
    )
    db.session.execute(
        delete(Verification)
        .where(Verification.tenant_id == tenant_id, Verification.id.not_in(select(kept.c.id)))
        .execution_options(synchronize_session=False)
    )


def _auto_repair(tenant_id: uuid.UUID, asked_by_run: uuid.UUID | None) -> None:
    if not current_app.config["VERIFY_AUTO_REPAIR"]:
        return
    if asked_by_run is not None:
        log.info("auto-repair not started: this verification followed repair run %s", asked_by_run)
        return
    tenant = db.session.get(Tenant, tenant_id)
    try:
        run = repair(tenant, AUTO_REPAIR) if tenant is not None else None
    except (Conflict, QueueUnavailable) as exc:
        log.info("auto-repair not started: %s", getattr(exc, "message", exc))
        return
    log.info("auto-repair started: run %s", run.id if run else None)


# -- repairing --------------------------------------------------------------------------------


def repair(tenant: Tenant, actor: str) -> Run:
    """Start a REPAIR run of the steps the latest verification found drifted (409 if it is
    not `drifted`, or if a run is active)."""
    latest = latest_verification(tenant.id)
    if latest is None or latest.status != VerificationStatus.DRIFTED:
        status = latest.status if latest else None
        raise NothingToRepair(
            f"nothing to repair: the latest verification is {status or 'not there yet'}",
            verification_status=status,
        )
    drifted = {check["step"] for check in latest.checks or [] if check["state"] in DRIFT}
    completed = runs._completed_steps(tenant)
    steps = plans.repair_steps(drifted, completed - drifted)
    previous = latest_run(tenant.id)
    # The workspace's choices (template, demo data, POS store) as its latest run made them.
    options = {**(previous.options if previous else {}), "repair": True}
    request_ = runs.StartRequest(plan=plans.REPAIR, steps=list(steps), options=options)
    return runs.start(tenant, request_, actor)


# -- reading ----------------------------------------------------------------------------------


def provisioned() -> ColumnElement[bool]:
    """The workspaces that are verified on a schedule and counted by the metrics."""
    return and_(Tenant.provisioning_status.in_(PROVISIONED), Tenant.status != TenantStatus.ARCHIVED)


def outcomes() -> dict[uuid.UUID, tuple[str, dict[str, dict[str, int]] | None]]:
    """Each provisioned workspace's latest finished verification: its status and tally
    (`never` and None without one). One being verified counts with its previous outcome."""
    rows = db.session.execute(
        select(Tenant.id, Verification.status, Verification.tally)
        .outerjoin(Verification, and_(Verification.tenant_id == Tenant.id, Verification.latest))
        .where(provisioned())
    ).all()
    found: dict[uuid.UUID, tuple[str, Any]] = {}
    busy: list[uuid.UUID] = []
    for tenant_id, status, counts in rows:
        found[tenant_id] = (status or "never", counts)
        if status in ACTIVE_VERIFICATION_STATUSES:
            busy.append(tenant_id)
            found[tenant_id] = ("never", None)
    if busy:  # few at a time: the schedule caps how many run per site
        earlier = db.session.execute(
            select(Verification.tenant_id, Verification.status, Verification.tally)
            .where(
                Verification.tenant_id.in_(busy),
                Verification.status.in_(FINISHED_VERIFICATION_STATUSES),
            )
            .order_by(Verification.created_at)
        )
        for tenant_id, status, counts in earlier:
            found[tenant_id] = (status, counts)  # the newest comes last
    return found


# -- helpers -----------------------------------------------------------------------------------


def _active(tenant_id: uuid.UUID) -> Verification | None:
    return db.session.execute(
        select(Verification).where(
            Verification.tenant_id == tenant_id,
            Verification.status.in_(ACTIVE_VERIFICATION_STATUSES),
        )
    ).scalar_one_or_none()


def _set_latest(verification_id: uuid.UUID, *, latest: bool) -> Any:
    return (
        update(Verification)
        .where(Verification.id == verification_id)
        .values(latest=latest)
        .execution_options(synchronize_session=False)
    )


def _not_ours(
    verification: Verification | None,
    task_id: str,
    statuses: tuple[VerificationStatus, ...] = ACTIVE_VERIFICATION_STATUSES,
) -> str | None:
    """Why this task may not change the verification (None: it may)."""
    if verification is None:
        return "no such verification"
    if verification.task_id != task_id:
        return f"verification {verification.id} expects task {verification.task_id}"
    if verification.status not in statuses:
        return f"verification {verification.id} is {verification.status}"
    return None
