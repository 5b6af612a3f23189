"""The only code that changes a site job's state, and the job's event log.

Callers hold the job's row lock (`lock_job`) for the whole change, so the API and the
workers never interleave on one job.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from provisioner.extensions import db
from provisioner.models import JobStatus, SiteJob, SiteJobEvent
from provisioner.models.types import utcnow
from provisioner.orchestration.states import InvalidTransition

J = JobStatus
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    J.PENDING: frozenset({J.RUNNING, J.FAILED, J.CANCELLED}),
    # running -> running: the next attempt after a retry or a redelivery
    J.RUNNING: frozenset({J.RUNNING, J.COMPLETED, J.FAILED, J.CANCELLED}),
    J.COMPLETED: frozenset({J.PENDING}),  # retry
    J.FAILED: frozenset({J.PENDING}),  # retry
    J.CANCELLED: frozenset(),
}
FINAL = (J.COMPLETED, J.FAILED, J.CANCELLED)


def lock_job(job_id: uuid.UUID | str) -> SiteJob | None:
    """Load a job with its row locked until the transaction ends (FOR UPDATE)."""
    stmt = (
        select(SiteJob)
        .where(SiteJob.id == _uuid(job_id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def set_status(job: SiteJob, target: JobStatus, message: str | None = None) -> None:
    if target not in TRANSITIONS[JobStatus(job.status)]:
        raise InvalidTransition("job", job.status, target)
    job.status = target
    now = utcnow()
    if target == J.PENDING:
        job.started_at = job.finished_at = None
    elif target == J.RUNNING:
        job.started_at = job.started_at or now
    else:
        job.finished_at = now
    if message is not None:
        job.message = message


def event(job: SiteJob, kind: str, message: str) -> None:
    if job.id is None:  # a job declared in this transaction gets its id on flush
        db.session.flush()
    db.session.add(SiteJobEvent(job_id=job.id, kind=kind, message=message, created_at=utcnow()))


def add_event(job_id: Any, kind: str, message: str) -> None:
    """An event on its own, committed at once (a worker's output lines as they come)."""
    db.session.add(
        SiteJobEvent(job_id=_uuid(job_id), kind=kind, message=message, created_at=utcnow())
    )
    db.session.commit()


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
