"""The verification schedule: every provisioned workspace verified every VERIFY_INTERVAL s,
as a trickle on each engine site.

A beat task (`provisioner.verify.schedule`, every VERIFY_TICK s) asks for the verifications
that are due. A workspace is due VERIFY_INTERVAL after its latest verification was asked
for; one never verified is due at its own stable offset (its id modulo the interval) in the
first interval after it was created, so workspaces made in a burst are spread over the
interval instead of being due at once. Of the due ones the most overdue go first, and one
tick starts at most VERIFY_PER_SITE per engine site, less the verifications of that site
still pending or running: a backlog (say, a fleet that existed before verification did)
drains at that pace. Workspaces with an active run wait for it (the end of a REPAIR run verifies by
itself). ENGINE_MAX_CONCURRENCY caps the engine calls of whatever runs.

A verification still pending or running VERIFY_LOST_AFTER s after it was asked for lost
its message or its worker: the tick fails it, which frees the tenant for the next one.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select

from provisioner.engine import EngineCredentials
from provisioner.errors import Conflict, QueueUnavailable
from provisioner.extensions import db
from provisioner.models import Run, Tenant, Verification, VerificationStatus
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.models.verification import ACTIVE_VERIFICATION_STATUSES
from provisioner.orchestration import changes, engines, verifications

log = logging.getLogger(__name__)

# Where a tenant's engine is (`Tenant.has_own_site`, and its URL and site), read in SQL.
_SITE_COLUMNS = (Tenant.engine_url, Tenant.engine_site, Tenant.engine_api_key_enc.is_not(None))


@dataclass(frozen=True)
class Candidate:
    tenant_id: uuid.UUID
    site: str  # the engine site's key (what ENGINE_MAX_CONCURRENCY counts by)
    due_at: float  # epoch seconds


@dataclass
class Report:
    lost: int = 0
    due: int = 0
    started: int = 0

    def counts(self) -> dict[str, int]:
        return {"lost": self.lost, "due": self.due, "started": self.started,
                "deferred": self.due - self.started}  # fmt: skip


def due_at(
    tenant_id: uuid.UUID, last_asked: datetime | None, created: datetime, interval: float
) -> float:
    """When the tenant's next verification is due (epoch seconds): an interval after the
    last one was asked for, else the first time after its creation at its offset."""
    if last_asked is not None:
        return last_asked.timestamp() + interval
    period = max(int(interval), 1)
    since = created.timestamp()
    return since + (tenant_id.int % period - since) % period


def pick(
    candidates: Iterable[Candidate], now: float, per_site: int, busy: Mapping[str, int]
) -> list[Candidate]:
    """The due candidates to start now: most overdue first, at most `per_site` per site
    counting the `busy` ones (pending or running) of that site."""
    taken: Counter[str] = Counter(busy)
    chosen = []
    for candidate in sorted((c for c in candidates if c.due_at <= now), key=lambda c: c.due_at):
        if taken[candidate.site] < per_site:
            taken[candidate.site] += 1
            chosen.append(candidate)
    return chosen


def tick(now: datetime | None = None) -> Report:
    """Fail the lost verifications, then ask for the ones due (a trickle per engine site)."""
    now = now or utcnow()
    cfg = current_app.config
    report = Report(lost=fail_lost(now))
    interval = float(cfg["VERIFY_INTERVAL"])
    if interval <= 0:
        return report
    epoch = now.timestamp()
    candidates = due(now, interval)
    report.due = sum(1 for c in candidates if c.due_at <= epoch)
    chosen = pick(candidates, epoch, int(cfg["VERIFY_PER_SITE"]), busy_per_site())
    changes.rollback()  # the reads are done; each request is a transaction of its own
    for candidate in chosen:
        tenant = db.session.get(Tenant, candidate.tenant_id)
        if tenant is None:
            continue
        try:
            report.started += verifications.request(tenant, verifications.SCHEDULE).created
        except Conflict as exc:
            log.info("scheduled verification of %s not started: %s", tenant.slug, exc.message)
        except QueueUnavailable:
            log.warning("the task queue is unreachable; the next tick tries again")
            break
    return report


def due(now: datetime, interval: float) -> list[Candidate]:
    """Provisioned workspaces without an active run or verification, verified longer than
    `interval` ago or never, with when each is due."""
    latest = and_(Verification.tenant_id == Tenant.id, Verification.latest)
    run_active = exists().where(Run.tenant_id == Tenant.id, Run.status.in_(ACTIVE_RUN_STATUSES))
    rows = db.session.execute(
        select(*_SITE_COLUMNS, Tenant.id, Tenant.created_at, Verification.created_at.label("asked"))
        .outerjoin(Verification, latest)
        .where(
            verifications.provisioned(),
            ~run_active,
            or_(
                Verification.id.is_(None),
                and_(
                    Verification.status.not_in(ACTIVE_VERIFICATION_STATUSES),
                    Verification.created_at <= now - timedelta(seconds=interval),
                ),
            ),
        )
    )
    shared = engines.default_credentials().site_key
    return [
        Candidate(row.id, _site(row, shared), due_at(row.id, row.asked, row.created_at, interval))
        for row in rows
    ]


def busy_per_site() -> Counter[str]:
    """Verifications pending or running now, by engine site."""
    rows = db.session.execute(
        select(*_SITE_COLUMNS, func.count())
        .join(Verification, Verification.tenant_id == Tenant.id)
        .where(Verification.status.in_(ACTIVE_VERIFICATION_STATUSES))
        .group_by(*_SITE_COLUMNS)
    )
    shared = engines.default_credentials().site_key
    busy: Counter[str] = Counter()
    for row in rows:
        busy[_site(row, shared)] += row[-1]
    return busy


def fail_lost(now: datetime) -> int:
    """Fail the verifications still pending or running VERIFY_LOST_AFTER s after they were
    asked for (their message or their worker is gone); a late delivery then does nothing."""
    after = float(current_app.config["VERIFY_LOST_AFTER"])
    lost = db.session.execute(
        select(Verification)
        .where(
            Verification.status.in_(ACTIVE_VERIFICATION_STATUSES),
            Verification.created_at < now - timedelta(seconds=after),
        )
        .with_for_update(skip_locked=True)
    ).scalars()
    count = 0
    for verification in lost:
        verification.status = VerificationStatus.FAILED
        verification.error = f"lost: not done {after:.0f} s after it was asked for"
        verification.checked_at = now
        count += 1
    changes.commit()
    if count:
        log.warning("%d verifications were lost and are failed", count)
    return count


def _site(row: Any, shared: str) -> str:
    """The key of the tenant's engine site (`EngineCredentials.site_key`), not decrypting
    its secret to get it."""
    url, site, own = row[0], row[1], row[2]
    return EngineCredentials(url, "", "", site).site_key if url and own else shared
