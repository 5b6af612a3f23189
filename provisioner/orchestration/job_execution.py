"""What a worker records while it runs a site job: claim, progress, output, outcome.

Every write is guarded by the job's status and task id as stored: a job cancelled (or
handed to a newer task by a retry) is never touched by the old task again, and an outcome
that arrives after a cancel is logged as ignored, never applied to the tenant.

The site a job acts on comes from the site registry (`sites.registry`), never from the
tenant's engine settings, which a workspace owner can change.

While a job runs, a side thread of its worker beats its heartbeat, the row's `updated_at`
(`heartbeat`); what the job does now (waits for its message, runs, waits out a retry) is
told by its latest lifecycle event (`phase`). A delivery finds a job that another one runs
with a fresh heartbeat and leaves it alone; if that one is gone, the watchdog requeues it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import Engine, select, update

from provisioner import sites
from provisioner.engine import EngineCredentials
from provisioner.extensions import db
from provisioner.models import (
    JobStatus,
    JobType,
    Site,
    SiteJob,
    SiteJobEvent,
    SiteState,
    Tenant,
    TenantStatus,
)
from provisioner.models.job import ACTIVE_JOB_STATUSES
from provisioner.models.site import REGISTERED
from provisioner.models.types import utcnow
from provisioner.orchestration import changes, engines
from provisioner.orchestration.transitions import (
    add_job_event,
    job_event,
    lock_job,
    lock_tenant,
    set_job_status,
)
from provisioner.security import scrub
from provisioner.sites import (
    SiteBackup,
    SiteCreated,
    SiteDeleted,
    SiteJobError,
    SiteOutcome,
    SiteTaken,
    registry,
)

log = logging.getLogger(__name__)
MAX_LINE = 2000  # characters of one output line kept in the log
# The registry states in which each job type may act on a tenant's site.
ACTS_ON = {
    JobType.CREATE_SITE: (SiteState.CREATING, SiteState.ACTIVE),  # ACTIVE: a retried, completed one
    JobType.BACKUP_SITE: REGISTERED,
    JobType.DELETE_SITE: (*REGISTERED, SiteState.DELETED),
}


class Phase(StrEnum):
    WAITING = "waiting for its message"
    RUNNING = "running"
    BACKOFF = "waiting to retry"


# The job events that start a phase (the watchdog's requeue: a new message to wait for).
PHASES = {
    "created": Phase.WAITING,
    "retry": Phase.WAITING,
    "watchdog_requeued": Phase.WAITING,
    "started": Phase.RUNNING,
    "retry_scheduled": Phase.BACKOFF,
}


@dataclass(frozen=True)
class Claim:
    run: bool
    reason: str
    job_type: JobType | None = None
    site: str | None = None


def claim(job_id: str, task_id: str, worker: str | None = None) -> Claim:
    """Decide whether this delivery runs the job; if so, mark it running (committed)."""
    job = lock_job(job_id)
    if job is None:
        changes.rollback()
        return Claim(False, "no such job")
    if job.task_id != task_id:
        changes.rollback()
        return Claim(False, "another task runs this job now")
    if job.status not in ACTIVE_JOB_STATUSES:
        changes.rollback()
        return Claim(False, f"the job is {job.status}")
    silence = utcnow() - job.updated_at
    if phase(job.id) == Phase.RUNNING and silence < timedelta(
        seconds=current_app.config["STALE_AFTER"]
    ):
        changes.rollback()  # a redelivery while its first delivery may still run it
        return Claim(False, "an earlier delivery runs it (its heartbeat is fresh)")
    site = _site_of(job)
    if site is None:
        error = sites.PermanentSiteError(
            f"the site registry holds no site of this workspace that a {job.job_type} may act on"
        )
        _record_failure(job, error)
        changes.commit()
        return Claim(False, error.message)
    if job.job_type == JobType.DELETE_SITE and site.state == SiteState.ACTIVE:
        registry.settle(site, SiteState.DELETING)
    job.attempts += 1
    set_job_status(job, JobStatus.RUNNING, f"attempt {job.attempts}: {job.job_type} of {site.name}")
    job_event(job, "started", f"attempt {job.attempts} on {worker or 'a worker'}")
    changes.commit()
    return Claim(True, "claimed", JobType(job.job_type), site.name)


class Reporter:
    """The job's record as a backend sees it (`sites.JobContext`), for one task."""

    def __init__(self, job_id: str, task_id: str) -> None:
        self.job_id, self.task_id = uuid.UUID(job_id), task_id

    def step(self, progress: int, message: str) -> None:
        changed = db.session.execute(
            update(SiteJob)
            .where(*self._ours())
            .values(progress=progress, message=message, updated_at=utcnow())
            .returning(SiteJob.id)
        ).first()
        if changed is None:
            changes.rollback()
            raise sites.JobCancelled(f"the job was cancelled before: {message}")
        add_job_event(self.job_id, "step", message)

    def output(self, line: str) -> None:
        add_job_event(self.job_id, "output", scrub.text(line[:MAX_LINE]))

    def wanted(self) -> bool:
        row = db.session.execute(select(SiteJob.id).where(*self._ours())).first()
        changes.rollback()  # end the read's transaction
        return row is not None

    def made_by_earlier_attempt(self) -> bool:
        started = registry.creation_started(self.job_id)
        changes.rollback()
        return started

    def record_creation_start(self) -> None:
        job = lock_job(self.job_id)
        if job is None or not _ours(job, self.task_id):
            changes.rollback()
            raise sites.JobCancelled("the job was cancelled before the site was made")
        registry.start_creation(self.job_id)
        changes.commit()

    def _ours(self) -> tuple[Any, ...]:
        return (
            SiteJob.id == self.job_id,
            SiteJob.task_id == self.task_id,
            SiteJob.status == JobStatus.RUNNING,
        )


def retrying(job_id: str, task_id: str, exc: SiteJobError, countdown: float) -> None:
    job = lock_job(job_id)
    if job is None or not _ours(job, task_id):
        changes.rollback()
        return
    job.error = exc.summary()
    job.message = f"attempt {job.attempts} failed: {exc.message}; next in {countdown:.0f} s"
    job_event(job, "retry_scheduled", job.message)
    changes.commit()


def complete(job_id: str, task_id: str, outcome: SiteOutcome) -> bool:
    """Apply the outcome to the tenant and complete the job, unless it is no longer ours."""
    job = lock_job(job_id)
    if job is None:
        changes.rollback()
        return False
    if not _ours(job, task_id):
        job_event(
            job,
            "late_result_ignored",
            f"the job was {job.status} when its {job.job_type} finished; not applied: "
            f"{outcome.public()}",
        )
        changes.commit()
        return False
    _apply(lock_tenant(job.tenant_id), job, outcome)
    job.progress, job.result, job.error = 100, outcome.public(), None
    set_job_status(job, JobStatus.COMPLETED, _summary(outcome))
    job_event(job, "completed", _summary(outcome))
    changes.commit()
    return True


def fail(job_id: str, task_id: str, exc: SiteJobError) -> None:
    job = lock_job(job_id)
    if job is None:
        changes.rollback()
        return
    if not _ours(job, task_id):
        job_event(job, "late_result_ignored", f"the job was {job.status}; failure: {exc.message}")
    else:
        _record_failure(job, exc)
    changes.commit()


def stopped(job_id: str, reason: str) -> None:
    add_job_event(job_id, "stopped", reason)


def heartbeat(engine: Engine, job_id: str, task_id: str) -> None:
    """Refresh the running job's heartbeat from a side thread (own connection, no ORM session)."""
    with engine.begin() as conn:
        conn.execute(
            update(SiteJob)
            .where(
                SiteJob.id == uuid.UUID(job_id),
                SiteJob.task_id == task_id,
                SiteJob.status == JobStatus.RUNNING,
            )
            .values(updated_at=utcnow())
        )


def phase(job_id: uuid.UUID) -> Phase:
    kind = db.session.execute(
        select(SiteJobEvent.kind)
        .where(SiteJobEvent.job_id == job_id, SiteJobEvent.kind.in_(PHASES))
        .order_by(SiteJobEvent.id.desc())
        .limit(1)
    ).scalar()
    return PHASES.get(kind or "created", Phase.WAITING)


def give_up(job: SiteJob, exc: SiteJobError) -> None:
    """Fail the (locked) job for good, as its own failure would."""
    _record_failure(job, exc)


# -- helpers -------------------------------------------------------------------------------


def _ours(job: SiteJob, task_id: str) -> bool:
    return job.task_id == task_id and job.status == JobStatus.RUNNING


def _site_of(job: SiteJob) -> Site | None:
    """The registered site the job acts on, if its state allows the job."""
    if job.job_type == JobType.CREATE_SITE:
        site = registry.of_job(job.id)
    else:
        site = registry.registered(job.tenant_id, ACTS_ON[JobType(job.job_type)])
    if site is None or site.tenant_id != job.tenant_id:
        return None
    return site if site.state in ACTS_ON[JobType(job.job_type)] else None


def _record_failure(job: SiteJob, exc: SiteJobError) -> None:
    job.error = exc.summary()
    set_job_status(job, JobStatus.FAILED, f"failed: {exc.message}")
    job_event(job, "failed", exc.message)
    site = _site_of(job)
    if site is None:
        return
    if job.job_type == JobType.CREATE_SITE and site.state == SiteState.CREATING:
        registry.settle(site, SiteState.FAILED)
        if isinstance(exc, SiteTaken):
            site.creation_started_at = None  # whatever is there, no attempt of ours made it
    elif job.job_type == JobType.DELETE_SITE and site.state == SiteState.DELETING:
        registry.settle(site, SiteState.ACTIVE)  # as far as anyone knows it is still there


def _apply(tenant: Tenant, job: SiteJob, outcome: SiteOutcome) -> None:
    site = _site_of(job)
    if isinstance(outcome, SiteCreated):
        # From now on provisioning targets this site (engines.credentials_for).
        engines.assign_site(
            tenant,
            EngineCredentials(outcome.url, outcome.api_key, outcome.api_secret, outcome.site),
        )
        tenant.status = TenantStatus.ACTIVE
        if site is not None:
            registry.settle(site, SiteState.ACTIVE)
    elif isinstance(outcome, SiteDeleted):
        tenant.status = TenantStatus.ARCHIVED
        if site is not None:
            registry.settle(site, SiteState.DELETED)


def _summary(outcome: SiteOutcome) -> str:
    if isinstance(outcome, SiteCreated):
        made = "kept (it existed), with new API keys" if outcome.reused else "created"
        return f"site {outcome.site} {made}; the workspace now uses it"
    if isinstance(outcome, SiteBackup):
        return f"backup of {outcome.site}: {len(outcome.files)} files"
    already = " (it was gone already)" if outcome.already_gone else ""
    return f"site {outcome.site} dropped{already}; the workspace is archived"
