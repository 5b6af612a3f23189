"""Site lifecycle jobs (create, delete, back up a tenant's own engine site) and their log."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioner.extensions import Model, db
from provisioner.models.tenant import Tenant
from provisioner.models.types import JsonDocument, UTCDateTime, utcnow


class JobType(StrEnum):
    CREATE_SITE = "create_site"
    DELETE_SITE = "delete_site"
    BACKUP_SITE = "backup_site"


class JobStatus(StrEnum):
    PENDING = "pending"  # written and queued; no worker has started it
    RUNNING = "running"  # a worker runs it, or waits out a retry backoff
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING)
_ACTIVE = "status IN ({})".format(", ".join(f"'{s.value}'" for s in ACTIVE_JOB_STATUSES))


class SiteJob(Model):
    __tablename__ = "site_jobs"
    __table_args__ = (
        # One active job per tenant and type, enforced by the database itself.
        Index(
            "uq_site_jobs_one_active_per_tenant_type",
            "tenant_id",
            "job_type",
            unique=True,
            postgresql_where=db.text(_ACTIVE),
            sqlite_where=db.text(_ACTIVE),
        ),
        Index("ix_site_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_site_jobs_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_type: Mapped[JobType] = mapped_column(String(20))
    status: Mapped[JobStatus] = mapped_column(String(16), default=JobStatus.PENDING)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)  # a summary, no secrets
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)  # site, url, files
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The Celery task expected to run the job; any other delivery is stale and does nothing.
    task_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship()


class SiteJobEvent(Model):
    """One line of a job's log: what it did, the backend's output, retries, cancellation."""

    __tablename__ = "site_job_events"
    __table_args__ = (Index("ix_site_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("site_jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
