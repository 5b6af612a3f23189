"""Helpers of the site job tests: wait for a job, declare one directly in a given state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from provisioner.extensions import db
from provisioner.models import JobStatus, Site, SiteJob, SiteJobEvent, SiteState, Tenant
from provisioner.models.job import ACTIVE_JOB_STATUSES
from provisioner.models.types import utcnow

JOBS = "/api/v1/provisioning/jobs"


def wait_job(
    job_id: Any, timeout: float = 60, *, until: Callable[[SiteJob], bool] | None = None
) -> SiteJob:
    """Poll the database until the job is final (or `until(job)` holds)."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        job = db.session.get(SiteJob, uuid.UUID(str(job_id)))
        if until(job) if until else job.status not in ACTIVE_JOB_STATUSES:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status} after {timeout} s: {kinds(job)}")
        time.sleep(0.1)


def events(job: SiteJob) -> list[SiteJobEvent]:
    query = select(SiteJobEvent).where(SiteJobEvent.job_id == job.id).order_by(SiteJobEvent.id)
    return list(db.session.execute(query).scalars())


def kinds(job: SiteJob) -> list[str]:
    return [e.kind for e in events(job)]


def job_row(tenant: Tenant, job_type: str, status: JobStatus, **fields: Any) -> SiteJob:
    """A job in a given state, written directly (no task is published for it)."""
    job = SiteJob(
        tenant_id=tenant.id,
        job_type=job_type,
        status=status,
        progress=0,
        attempts=0,
        task_id=str(uuid.uuid4()),
        created_by="tests",
        created_at=utcnow(),
        **fields,
    )
    db.session.add(job)
    db.session.commit()
    return job


def register_site(tenant: Tenant, name: str, state: SiteState = SiteState.ACTIVE) -> Site:
    """A site in the registry, as if a create_site job of the tenant had made it."""
    site = Site(name=name, tenant_id=tenant.id, state=state)
    db.session.add(site)
    db.session.commit()
    return site
