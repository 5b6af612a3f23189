"""Bulk recovery: continue, in one command, the runs that stopped and still need a person.

`Filters` pick each workspace's latest run when it ended in one of the statuses a continue
acts on (FAILED, PARTIAL), optionally on one engine site, with one step failed, finished in a
time range (`Run.finished_at`: since <= finished_at < until). Each picked run, the oldest
finished first, is continued by the single continue, `runs.resume(kind="continue")`, in a
transaction of its own whose audit entry notes the filters. A run that cannot be continued
(active again, nothing to continue, a newer run) is skipped with the reason; the rest go on.

Idempotent by the filters: a continued run is active, then completed or failed anew, so the
same command again does not continue it a second time (one made at the same moment finds it
active under its lock and skips it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from provisioner.errors import Conflict, QueueUnavailable
from provisioner.extensions import db
from provisioner.models import Run, RunStatus, RunStep, StepStatus, Tenant
from provisioner.orchestration import changes, engines, runs

CONTINUABLE = (RunStatus.FAILED.value, RunStatus.PARTIAL.value)
MAX_LIMIT = 1000
QUEUE_DOWN = "the task queue is unreachable; not continued"


@dataclass(frozen=True)
class Filters:
    status: Sequence[str] = (RunStatus.FAILED.value,)
    engine_site: str | None = None  # a site's name (`engines.site_of`)
    failed_step: str | None = None  # Provisioner's name of the step
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100

    def noted(self) -> dict[str, Any]:
        """The filters as the audit entry of each continued run keeps them."""
        noted: dict[str, Any] = {"status": list(self.status), "limit": self.limit}
        for name in ("engine_site", "failed_step"):
            if getattr(self, name) is not None:
                noted[name] = getattr(self, name)
        for name in ("since", "until"):
            if getattr(self, name) is not None:
                noted[name] = getattr(self, name).isoformat()
        return noted


@dataclass(frozen=True)
class Outcome:
    tenant_id: uuid.UUID
    tenant_slug: str
    run_id: uuid.UUID
    reason: str | None = None  # why it was skipped


@dataclass
class Report:
    matched: int
    dry_run: bool
    continued: list[Outcome] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)


def continue_runs(filters: Filters, actor: str, *, dry_run: bool = False) -> Report:
    """Continue the first `filters.limit` runs the filters match (with `dry_run`, say which
    would be continued or skipped, changing nothing)."""
    matched = matching(filters)
    changes.rollback()  # the reads are done; each continue is a transaction of its own
    report = Report(matched=len(matched), dry_run=dry_run)
    batch = matched[: filters.limit]
    for index, candidate in enumerate(batch):
        try:
            runs.resume(
                candidate.run_id,
                actor,
                kind="continue",
                details={"bulk": filters.noted()},
                dry_run=dry_run,
            )
        except Conflict as exc:
            report.skipped.append(replace(candidate, reason=exc.message))
        except LookupError:
            changes.rollback()
            report.skipped.append(replace(candidate, reason="the run no longer exists"))
        except QueueUnavailable:  # this one was put back; the next ones would meet it too
            report.skipped.extend(replace(c, reason=QUEUE_DOWN) for c in batch[index:])
            break
        else:
            report.continued.append(candidate)
    return report


def matching(filters: Filters) -> list[Outcome]:
    """The runs the filters match, the oldest finished first: each its workspace's latest."""
    newer = aliased(Run)
    stmt = (
        select(Run.id, Tenant)
        .join(Tenant, Tenant.id == Run.tenant_id)
        .where(
            Run.status.in_(filters.status),
            ~exists().where(newer.tenant_id == Run.tenant_id, newer.created_at > Run.created_at),
        )
        .order_by(Run.finished_at, Run.id)
    )
    if filters.failed_step is not None:
        stmt = stmt.where(
            exists().where(
                RunStep.run_id == Run.id,
                RunStep.name == filters.failed_step,
                RunStep.status == StepStatus.FAILED,
            )
        )
    if filters.since is not None:
        stmt = stmt.where(Run.finished_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(Run.finished_at < filters.until)
    return [
        Outcome(tenant.id, tenant.slug, run_id)
        for run_id, tenant in db.session.execute(stmt).all()
        if filters.engine_site is None or engines.site_of(tenant) == filters.engine_site
    ]
