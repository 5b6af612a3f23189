"""The watchdog: finds runs that stopped moving and sets them going again, or fails them.

A run gets stuck in one of three ways (the beat task looks every WATCHDOG_INTERVAL s):

- stale: a step is `running` but its heartbeat has been silent for STALE_AFTER s (or its
  process is dead on this host): the worker vanished, and Redis would hand its message to
  another worker only after the visibility timeout (an hour);
- lost: nothing runs or waits to retry, a step is `pending`, nothing happened for
  WATCHDOG_LOST_AFTER s and the queue is empty: the broker lost the chain's message;
- overdue: a step is `retrying`, its next attempt is WATCHDOG_RETRY_GRACE s late and the
  queue is empty: the worker holding the retry vanished.

The queue must be empty for the last two because a backlog delays messages without losing
them; so must it for a stale step the watchdog has already requeued (its new message may
be waiting behind the backlog). A stuck step is requeued: it and the pending steps after
it get new task ids and a new chain, so an old message that turns up later is refused by
`execution.claim`. After WATCHDOG_MAX_REQUEUES requeues of one step with no progress in
between, the run fails with the reason instead. Each action leaves a `watchdog_requeued`
or `watchdog_failed` event (which the metrics count). The sweep also re-enqueues webhook
deliveries whose message was lost, and reports the runs active for longer than
LONG_RUN_AFTER s.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from provisioner.errors import QueueUnavailable
from provisioner.extensions import db
from provisioner.models import Run, RunEvent, RunStep, StepStatus
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.orchestration import chain, changes, queue
from provisioner.orchestration.execution import abandoned
from provisioner.orchestration.transitions import (
    event,
    lock_run,
    mark_not_reached,
    set_step_status,
    settle,
)
from provisioner.webhooks import deliveries

log = logging.getLogger(__name__)

REQUEUED, FAILED = "watchdog_requeued", "watchdog_failed"
# Events after which a run is active again (its age for the long-running alert restarts).
ACTIVATIONS = ("run_created", "run_retry", "run_continue", "run_resumed")
# Events that show a run moving; requeues before the latest one do not count.
PROGRESS = (*ACTIVATIONS, "step_completed", "manual_rerun")


class Reason(StrEnum):
    STALE = "stale_heartbeat"
    LOST = "lost_message"
    OVERDUE = "overdue_retry"


@dataclass
class Report:
    requeued: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    webhooks_requeued: int = 0
    long_running: int = 0

    def counts(self) -> dict[str, int]:
        return {
            **{f"requeued_{reason}": n for reason, n in self.requeued.items()},
            **{f"failed_{reason}": n for reason, n in self.failed.items()},
            "webhooks_requeued": self.webhooks_requeued,
            "long_running": self.long_running,
        }


def sweep(now: datetime | None = None) -> Report:
    """One pass over the active runs and the pending webhook deliveries."""
    now = now or utcnow()
    report = Report()
    stuck = [
        (run.id, found[0].name, found[1])
        for run in _active_runs()
        if (found := diagnose(run, now)) is not None
    ]
    changes.rollback()
    backlog = cache(lambda: queue.depth() != 0)  # asked once per sweep; None (down) counts
    for run_id, step_name, reason in stuck:
        if reason != Reason.STALE and backlog():
            continue
        action = _recover(run_id, step_name, reason, now, backlog)
        if action == REQUEUED:
            report.requeued[reason] += 1
        elif action == FAILED:
            report.failed[reason] += 1
    report.webhooks_requeued = deliveries.requeue_overdue(now)
    late = long_running(now)
    report.long_running = len(late)
    if late:
        log.warning("%d runs active for too long: %s", len(late), ", ".join(map(str, late)))
    if report.requeued or report.failed or report.webhooks_requeued:
        log.info("watchdog: %s", report.counts())
    return report


def diagnose(run: Run, now: datetime) -> tuple[RunStep, Reason] | None:
    """The step that holds the run up and why, if the run is stuck."""
    cfg = current_app.config
    for step in run.steps:
        if step.status == StepStatus.WAITING:
            return None  # parked for its engine: the engine probe resumes it
        if step.status == StepStatus.RUNNING:
            return (step, Reason.STALE) if abandoned(step, now) else None
        if step.status == StepStatus.RETRYING:
            due = step.next_attempt_at or now
            late = now - due > timedelta(seconds=cfg["WATCHDOG_RETRY_GRACE"])
            return (step, Reason.OVERDUE) if late else None
    pending = next((s for s in run.steps if s.status == StepStatus.PENDING), None)
    if pending is None:
        return None
    moments = [run.created_at, run.queued_at]
    moments += [t for s in run.steps for t in (s.started_at, s.finished_at)]
    last = max(t for t in moments if t is not None)
    if now - last > timedelta(seconds=cfg["WATCHDOG_LOST_AFTER"]):
        return pending, Reason.LOST
    return None


def long_running(now: datetime) -> list[uuid.UUID]:
    """Active runs that became active more than LONG_RUN_AFTER seconds ago."""
    limit = timedelta(seconds=current_app.config["LONG_RUN_AFTER"])
    return [run_id for run_id, since in active_since().items() if now - since > limit]


def active_since() -> dict[uuid.UUID, datetime]:
    """When each active run was last started, retried, continued or resumed."""
    rows = db.session.execute(
        select(RunEvent.run_id, func.max(RunEvent.created_at))
        .join(Run, Run.id == RunEvent.run_id)
        .where(Run.status.in_(ACTIVE_RUN_STATUSES), RunEvent.kind.in_(ACTIVATIONS))
        .group_by(RunEvent.run_id)
    )
    return dict(rows.all())


def _active_runs() -> list[Run]:
    return list(
        db.session.execute(
            select(Run)
            .where(Run.status.in_(ACTIVE_RUN_STATUSES))
            .options(selectinload(Run.steps))
            .execution_options(populate_existing=True)
        ).scalars()
    )


def _recover(
    run_id: uuid.UUID, step_name: str, reason: Reason, now: datetime, backlog: Callable[[], bool]
) -> str | None:
    """Requeue or fail the stuck step, if the run is still stuck at it under the run's lock."""
    run = lock_run(run_id)
    found = diagnose(run, now) if run and run.status in ACTIVE_RUN_STATUSES else None
    if run is None or found is None or found[0].name != step_name:
        changes.rollback()  # it moved meanwhile
        return None
    step = found[0]
    why = _explain(step, reason)
    requeues = _requeues_since_progress(run, step)
    if reason == Reason.STALE and requeues and backlog():
        changes.rollback()  # requeued already: its new message waits in the queue
        return None
    if requeues >= current_app.config["WATCHDOG_MAX_REQUEUES"]:
        _fail(run, step, reason, why)
        changes.commit()
        log.warning("watchdog failed run %s: %s", run.id, why)
        return FAILED
    to_run = chain.restart_from(run, step)
    event(run, REQUEUED, step=step, message=why, data={"reason": str(reason)})
    changes.commit()
    log.warning("watchdog requeued run %s: %s", run.id, why)
    with suppress(QueueUnavailable):  # logged; the run stays stuck, the next sweep retries
        chain.publish(run, to_run)
    return REQUEUED


def _explain(step: RunStep, reason: Reason) -> str:
    cfg = current_app.config
    if reason == Reason.STALE:
        why = f"no heartbeat for over {cfg['STALE_AFTER']:.0f} s: its worker vanished"
    elif reason == Reason.OVERDUE:
        why = f"its retry is over {cfg['WATCHDOG_RETRY_GRACE']:.0f} s late: its worker vanished"
    else:
        why = f"nothing happened for {cfg['WATCHDOG_LOST_AFTER']:.0f} s: its message was lost"
    return f"{step.name} was {step.status}; {why}"


def _requeues_since_progress(run: Run, step: RunStep) -> int:
    last_progress = (
        select(func.coalesce(func.max(RunEvent.id), 0))
        .where(RunEvent.run_id == run.id, RunEvent.kind.in_(PROGRESS))
        .scalar_subquery()
    )
    return db.session.execute(
        select(func.count()).where(
            RunEvent.run_id == run.id,
            RunEvent.kind == REQUEUED,
            RunEvent.step == step.name,
            RunEvent.id > last_progress,
        )
    ).scalar_one()


def _fail(run: Run, step: RunStep, reason: Reason, why: str) -> None:
    message = f"the watchdog gave up after {current_app.config['WATCHDOG_MAX_REQUEUES']} requeues"
    if step.status == StepStatus.PENDING:
        set_step_status(step, StepStatus.NOT_REACHED, f"{message}: {why}")
    else:
        set_step_status(step, StepStatus.FAILED, f"{message}: {why}")
        step.error = {"class": "WatchdogGaveUp", "message": f"{message}: {why}"}
    event(run, FAILED, step=step, message=f"{message}: {why}", data={"reason": str(reason)})
    mark_not_reached(run, step, f"not reached: {step.name} was given up by the watchdog")
    settle(run)
