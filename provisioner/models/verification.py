"""A verification of a workspace: what its steps' `verify` found in the engine, and when."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.extensions import Model, db
from provisioner.models.types import JsonDocument, UTCDateTime, utcnow


class VerificationStatus(StrEnum):
    PENDING = "pending"  # written and queued; no worker has started it
    RUNNING = "running"  # a worker is reading the engine
    OK = "ok"  # every document checked is there and right
    DRIFTED = "drifted"  # a document is missing or changed
    FAILED = "failed"  # the engine could not be read (or the verification was lost)


ACTIVE_VERIFICATION_STATUSES = (VerificationStatus.PENDING, VerificationStatus.RUNNING)
FINISHED_VERIFICATION_STATUSES = (
    VerificationStatus.OK,
    VerificationStatus.DRIFTED,
    VerificationStatus.FAILED,
)
_ACTIVE = "status IN ({})".format(", ".join(f"'{s.value}'" for s in ACTIVE_VERIFICATION_STATUSES))


class Verification(Model):
    __tablename__ = "verifications"
    __table_args__ = (
        # One pending or running verification per tenant, enforced by the database itself.
        Index(
            "uq_verifications_one_active_per_tenant",
            "tenant_id",
            unique=True,
            postgresql_where=db.text(_ACTIVE),
            sqlite_where=db.text(_ACTIVE),
        ),
        # The latest per tenant is one indexed row: the page, the metrics and the scheduler
        # read it for every workspace without scanning the history.
        Index(
            "uq_verifications_latest_per_tenant",
            "tenant_id",
            unique=True,
            postgresql_where=db.text("latest"),
            sqlite_where=db.text("latest"),
        ),
        Index("ix_verifications_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[VerificationStatus] = mapped_column(
        String(16), default=VerificationStatus.PENDING
    )
    # True on the tenant's newest verification only (the one `GET …/verification` answers).
    latest: Mapped[bool] = mapped_column(Boolean, default=True)
    # Who asked: a person's email, `cli:<login>`, `schedule`, `auto-repair`, `repair run <id>`.
    requested_by: Mapped[str] = mapped_column(String(254))
    # The REPAIR run whose end asked for this verification (a drift it finds is not
    # auto-repaired again: a repair that cannot mend something must not loop).
    after_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("provisioning_runs.id", ondelete="SET NULL")
    )
    # The run whose metadata said what to check (the tenant's latest when it started).
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("provisioning_runs.id", ondelete="SET NULL")
    )
    # The Celery task expected to carry it out; any other delivery is stale and does nothing.
    task_id: Mapped[str | None] = mapped_column(String(64))
    checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonDocument)  # Check.as_dict()
    # {step: {state: count}} of `checks`: what the metrics add up without reading every check.
    tally: Mapped[dict[str, dict[str, int]] | None] = mapped_column(JsonDocument)
    engine_reads: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # why it failed, in plain words
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


def latest_verification(tenant_id: uuid.UUID) -> Verification | None:
    """The tenant's newest verification (what its page shows), or None."""
    stmt = select(Verification).where(Verification.tenant_id == tenant_id, Verification.latest)
    return db.session.execute(stmt).scalar_one_or_none()
