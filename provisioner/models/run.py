"""A provisioning run, its declared steps, and its append-only event log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship, selectinload

from provisioner.extensions import Model, db
from provisioner.models.status import ACTIVE_RUN_STATUSES, RunStatus, StepStatus
from provisioner.models.tenant import Tenant
from provisioner.models.types import JsonDocument, UTCDateTime, utcnow

_ACTIVE = "status IN ({})".format(", ".join(f"'{s.value}'" for s in ACTIVE_RUN_STATUSES))
_WAITING = f"status = '{StepStatus.WAITING.value}'"


class Run(Model):
    __tablename__ = "provisioning_runs"
    __table_args__ = (
        # One active run per tenant, enforced by the database itself.
        Index(
            "uq_provisioning_runs_one_active_per_tenant",
            "tenant_id",
            unique=True,
            postgresql_where=db.text(_ACTIVE),
            sqlite_where=db.text(_ACTIVE),
        ),
        Index("ix_provisioning_runs_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    plan: Mapped[str] = mapped_column(String(40))
    options: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    status: Mapped[RunStatus] = mapped_column(String(16), default=RunStatus.PENDING, index=True)
    current_step: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # What steps hand to each other: company, abbreviation, accounts, warehouses, profile…
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDocument, default=dict)
    started_by: Mapped[str | None] = mapped_column(String(254))
    # When a chain for this run was last published (the watchdog looks for lost ones).
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The run's status document as `GET …/status` answers it, and its version (the tenant's
    # live-state counter when it was written): kept by every transaction that changes the
    # run, so status reads and live streams serve it without building it again.
    version: Mapped[int] = mapped_column(Integer, default=0)
    status_doc: Mapped[dict[str, Any] | None] = deferred(mapped_column(JsonDocument))

    tenant: Mapped[Tenant] = relationship()
    steps: Mapped[list[RunStep]] = relationship(
        back_populates="run", order_by="RunStep.position", cascade="all, delete-orphan"
    )

    def step(self, name: str) -> RunStep:
        return next(s for s in self.steps if s.name == name)


def latest_run(tenant_id: uuid.UUID, *, with_steps: bool = False) -> Run | None:
    """The tenant's newest run (what its status shows), with its steps if asked."""
    stmt = select(Run).where(Run.tenant_id == tenant_id).order_by(Run.created_at.desc()).limit(1)
    if with_steps:
        stmt = stmt.options(selectinload(Run.steps))
    return db.session.execute(stmt).scalar_one_or_none()


class RunStep(Model):
    """A step of one run: its state, attempts, error and result (the step itself is a
    `provisioner.steps.base.Step`)."""

    __tablename__ = "provisioning_steps"
    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        # The engine probe's question: which steps wait for an engine site (a few of many).
        Index(
            "ix_provisioning_steps_waiting",
            "next_attempt_at",
            postgresql_where=db.text(_WAITING),
            sqlite_where=db.text(_WAITING),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provisioning_runs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[StepStatus] = mapped_column(String(16), default=StepStatus.PENDING)
    critical: Mapped[bool] = mapped_column(default=True)
    optional: Mapped[bool] = mapped_column(default=False)
    # False when the run's options rule the step out (it is declared, and skipped).
    planned: Mapped[bool] = mapped_column(default=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    manual_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The Celery task executing (or about to retry) this step, and the process running it.
    task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A retry's or a waiting step's next attempt; since when the step waits for its engine.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)  # why skipped / not reached, remarks
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)

    run: Mapped[Run] = relationship(back_populates="steps")


class RunEvent(Model):
    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_id_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provisioning_runs.id", ondelete="CASCADE")
    )
    step: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str | None] = mapped_column(String(16))
    attempt: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
