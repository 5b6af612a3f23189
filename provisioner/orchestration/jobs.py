"""Commands on site jobs: create, retry, cancel.

The discipline of runs (and their machinery, `dispatch`): change the database under a row
lock with the audit entry of whoever asked, commit, then publish the job's task (its id
chosen up front and stored on the job). If publishing fails the change is undone and
`QueueUnavailable` goes up (the API answers 503).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from celery.canvas import Signature
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from provisioner import sites
from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.models import JobStatus, JobType, Run, SiteJob, SiteState, Tenant, TenantStatus
from provisioner.models.job import ACTIVE_JOB_STATUSES
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.orchestration import audit, changes, dispatch
from provisioner.orchestration.transitions import (
    job_event,
    lock_job,
    lock_tenant,
    set_job_status,
)
from provisioner.security.hostnames import RULE, is_hostname
from provisioner.sites import registry

TASK_PREFIX = "provisioner.site_jobs."
ONE_ACTIVE_JOB = "uq_site_jobs_one_active_per_tenant_type"
ONE_SITE_PER_NAME = "uq_sites_name"
RETRYABLE = (JobStatus.FAILED, JobStatus.COMPLETED)


def task_name(job_type: str) -> str:
    return TASK_PREFIX + job_type


def create(tenant: Tenant, job_type: JobType, actor: str) -> SiteJob:
    """Declare a job, commit, then publish its task."""
    locked = lock_tenant(tenant.id)
    _refuse_if_unfit(locked, job_type)
    job = SiteJob(
        tenant=locked,
        job_type=job_type,
        status=JobStatus.PENDING,
        progress=0,
        attempts=0,
        message="queued",
        task_id=str(uuid.uuid4()),
        created_by=actor,
        created_at=utcnow(),
    )
    db.session.add(job)
    job_event(job, "created", f"{job_type} asked by {actor}")
    if job_type == JobType.CREATE_SITE:
        _intend_site(locked, job)  # the registry's record comes before anything is made
    _audit(job, actor, "job.create")
    _commit(locked.id, job_type)
    job_id = job.id

    def undo() -> None:
        registry.withdraw(job_id)
        db.session.delete(db.session.get(SiteJob, job_id))

    _publish_or_undo(job, undo)
    return job


def retry(job_id: Any, actor: str) -> SiteJob:
    """Run a failed or completed job again (every backend command is safe to repeat)."""
    job = _locked(job_id)
    if job.status not in RETRYABLE:
        changes.rollback()
        raise Conflict(
            f"the job is {job.status}; only failed or completed jobs can be retried",
            status=job.status,
        )
    undo = dispatch.Undo(job, registry.of_job(job.id))
    if job.job_type == JobType.CREATE_SITE:
        _intend_site(lock_tenant(job.tenant_id), job)
    set_job_status(job, JobStatus.PENDING, f"retry asked by {actor}")
    job.task_id = str(uuid.uuid4())
    job.progress, job.error, job.result = 0, None, None
    job_event(job, "retry", f"retry asked by {actor}")
    _audit(job, actor, "job.retry")
    _commit(job.tenant_id, job.job_type)
    _publish_or_undo(job, undo)
    return job


def cancel(job_id: Any, actor: str) -> SiteJob:
    """Stop a pending or running job: recorded first, then its task is revoked.

    The worker checks the job's status before every change it makes and after every
    backend call, so even a revoke lost on the way changes nothing on the engine or the
    tenant after this commit (a result that arrives late is logged as ignored).
    """
    job = _locked(job_id)
    if job.status not in ACTIVE_JOB_STATUSES:
        changes.rollback()
        raise Conflict(
            f"the job is {job.status}; only a pending or running job can be cancelled",
            status=job.status,
        )
    task_id = job.task_id
    site = registry.of_job(job.id) if job.job_type == JobType.CREATE_SITE else None
    if site is not None and site.state == SiteState.CREATING:
        registry.settle(site, SiteState.FAILED)
    set_job_status(job, JobStatus.CANCELLED, f"cancelled by {actor}")
    job_event(job, "cancelled", f"cancelled by {actor}")
    _audit(job, actor, "job.cancel")
    changes.commit()
    if task_id:
        dispatch.revoke([task_id])
    return job


# -- helpers -------------------------------------------------------------------------------


def _refuse_if_unfit(tenant: Tenant, job_type: JobType) -> None:
    """Conflicts of the request with the workspace as it is (409 with the reason)."""
    reason = _unfit(tenant, job_type)
    if reason:
        changes.rollback()
        site = registry.registered(tenant.id)
        raise Conflict(
            reason, tenant_status=tenant.status, site=site.name if site else tenant.engine_site
        )
    active = _active_job(tenant.id, job_type)
    if active is not None:
        changes.rollback()
        raise Conflict(
            f"a {job_type} job is already active for this workspace",
            job_id=str(active.id),
            status=active.status,
        )


def _unfit(tenant: Tenant, job_type: JobType) -> str | None:
    if job_type != JobType.BACKUP_SITE and _run_active(tenant.id):
        return "a provisioning run is active for this workspace; wait for it or cancel it"
    if job_type == JobType.CREATE_SITE:
        return _unfit_to_create(tenant)
    if registry.registered(tenant.id) is not None:
        return None
    if tenant.has_own_site and tenant.status != TenantStatus.ARCHIVED:
        return (
            f"site {tenant.engine_site} was not made by a create_site job of this workspace; "
            "site jobs act only on sites this service made for the workspace"
        )
    return "the workspace has no site of its own"


def _unfit_to_create(tenant: Tenant) -> str | None:
    if tenant.has_own_site and tenant.status != TenantStatus.ARCHIVED:
        return f"the workspace has its own site already ({tenant.engine_site})"
    name = sites.site_name(tenant.slug)
    if not is_hostname(name):
        return f"the workspace's site name {name} is not a valid host name ({RULE})"
    return None  # whether the name is free: `registry.intend`


def _intend_site(tenant: Tenant, job: SiteJob) -> None:
    if job.id is None:
        db.session.flush()
    try:
        registry.intend(tenant, sites.site_name(tenant.slug), job)
    except Conflict:
        changes.rollback()
        raise


def _run_active(tenant_id: Any) -> bool:
    stmt = select(Run.id).where(Run.tenant_id == tenant_id, Run.status.in_(ACTIVE_RUN_STATUSES))
    return db.session.execute(stmt.limit(1)).first() is not None


def _active_job(tenant_id: Any, job_type: str) -> SiteJob | None:
    return db.session.execute(
        select(SiteJob).where(
            SiteJob.tenant_id == tenant_id,
            SiteJob.job_type == job_type,
            SiteJob.status.in_(ACTIVE_JOB_STATUSES),
        )
    ).scalar_one_or_none()


def _audit(job: SiteJob, actor: str, action: str) -> None:
    audit.record(job.tenant, actor, action, job.id, job_type=job.job_type)


def _commit(tenant_id: Any, job_type: str) -> None:
    """Commit; the database's one-active-job index turns a lost race into a 409."""
    try:
        changes.commit()
    except IntegrityError as exc:
        changes.rollback()
        if ONE_SITE_PER_NAME in str(exc.orig):  # another workspace's job registered it first
            raise Conflict("the site name was just registered to another workspace") from None
        if ONE_ACTIVE_JOB not in str(exc.orig):
            raise
        active = _active_job(tenant_id, job_type)
        raise Conflict(
            f"a {job_type} job is already active for this workspace",
            job_id=str(active.id) if active else None,
            status=active.status if active else None,
        ) from None


def _locked(job_id: Any) -> SiteJob:
    job = lock_job(job_id)
    if job is None:
        raise LookupError(f"job {job_id} not found")
    return job


def _publish_or_undo(job: SiteJob, undo: Callable[[], None]) -> None:
    dispatch.publish_or_undo(signature(job), lambda: lock_job(job.id), undo)


def signature(job: SiteJob) -> Signature:
    """The job's task message: its id, its time limits (the backend's budget for its type)."""
    soft, hard = time_limits(job.job_type)
    return dispatch.celery_app().signature(
        task_name(job.job_type),
        args=(str(job.id),),
        kwargs={"tenant": job.tenant.slug},  # a label for Flower and the logs
        task_id=job.task_id,
        soft_time_limit=soft,
        time_limit=hard,
    )


def time_limits(job_type: str) -> tuple[float, float]:
    """A job's time limits: its backend's declared budget for the job type (an attempt past
    it is retried), then the hard one (its process is killed; the watchdog requeues it)."""
    return dispatch.time_limits(sites.backend().time_budget(JobType(job_type)))
