"""The watchdog: finds runs and site jobs that stopped moving and sets them going again.

A run gets stuck in one of five ways (the beat task looks every WATCHDOG_INTERVAL s):

- dead worker: a step is `pending` or `retrying` and the message it waits for was held by a
  worker that died (its liveness key expired, `orchestration.liveness`): reserved by it but
  never started, or a retry waiting on it;
- stale: a step is `running` but its heartbeat has been silent for STALE_AFTER s (or its
  process is dead on this host): the worker vanished, and Redis would hand its message to
  another worker only after the visibility timeout (an hour);
- orphaned: nothing runs or waits to retry, a step is `pending`, no worker (live or dead)
  holds its message, the queue is empty and nothing happened for WATCHDOG_ORPHAN_AFTER s:
  the message was never sent (a worker died between a step's commit and the next step's
  publish) or was lost on its way;
- lost: the same when who holds what is not known (no worker liveness in Redis), after
  WATCHDOG_LOST_AFTER s;
- overdue: a step is `retrying`, its next attempt is WATCHDOG_RETRY_GRACE s late and the
  queue is empty: the worker holding the retry vanished.

The queue must be empty for the last three because a backlog delays messages without losing
them; so must it for a stale step the watchdog has already requeued (its new message may
be waiting behind the backlog). A stuck step is requeued: it and the pending steps after
it get new task ids and a new chain, so an old message that turns up later (Redis after
the visibility timeout, RabbitMQ at once) is refused by `execution.claim`; a running step
is never requeued while its heartbeat is fresh. After WATCHDOG_MAX_REQUEUES requeues of one
step with no progress in between, the run fails with the reason instead. Each action leaves
a `watchdog_requeued` or `watchdog_failed` event (which the metrics count). The sweep also
re-enqueues webhook deliveries whose message was lost, reports the runs active for longer
than LONG_RUN_AFTER s, and looks after site jobs the same way (`_sweep_jobs`).

Each sweep logs one INFO line with what it did and leaves it in Redis for the metrics
(`last_sweep`); `sweep_once`, the beat task's body, skips a sweep while another one holds
the sweep lock.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

import redis
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from provisioner import sites
from provisioner.errors import QueueUnavailable
from provisioner.extensions import db
from provisioner.models import Run, RunEvent, RunStep, SiteJob, SiteJobEvent, StepStatus
from provisioner.models.job import ACTIVE_JOB_STATUSES
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.orchestration import chain, changes, dispatch, job_execution, jobs, liveness, queue
from provisioner.orchestration.execution import abandoned
from provisioner.orchestration.transitions import (
    event,
    job_event,
    lock_job,
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
    ORPHANED = "orphaned_message"
    LOST = "lost_message"
    OVERDUE = "overdue_retry"
    DEAD = "dead_worker"


# A backlog delays messages without losing them: these wait for an empty queue.
QUEUE_MUST_BE_EMPTY = (Reason.ORPHANED, Reason.LOST, Reason.OVERDUE)


@dataclass
class Report:
    requeued: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    jobs_requeued: Counter[str] = field(default_factory=Counter)
    jobs_failed: Counter[str] = field(default_factory=Counter)
    dead_workers: int = 0
    webhooks_requeued: int = 0
    long_running: int = 0

    def counts(self) -> dict[str, int]:
        return {
            **{f"requeued_{reason}": n for reason, n in self.requeued.items()},
            **{f"failed_{reason}": n for reason, n in self.failed.items()},
            **{f"jobs_requeued_{reason}": n for reason, n in self.jobs_requeued.items()},
            **{f"jobs_failed_{reason}": n for reason, n in self.jobs_failed.items()},
            "dead_workers": self.dead_workers,
            "webhooks_requeued": self.webhooks_requeued,
            "long_running": self.long_running,
        }


def sweep_once() -> Report | None:
    """A sweep, unless another one is under way (then None, and a log line says so)."""
    with _sweep_lock() as held:
        if not held:
            log.info("watchdog sweep skipped: another sweep is under way")
            _count_sweep("skipped")
            return None
        return sweep()


def sweep(now: datetime | None = None) -> Report:
    """One pass over the active runs, the active site jobs and the pending webhook deliveries."""
    started = time.monotonic()
    now = now or utcnow()
    report = Report()
    dead = liveness.dead()
    report.dead_workers = len(dead.held)
    stuck = [
        (run.id, found[0].name, found[1])
        for run in _active_runs()
        if (found := diagnose(run, now, dead.task_ids, dead.live)) is not None
    ]
    changes.rollback()
    backlog = cache(lambda: queue.depth() != 0)  # asked once per sweep; None (down) counts
    for run_id, step_name, reason in stuck:
        if reason in QUEUE_MUST_BE_EMPTY and backlog():
            continue
        action = _recover(run_id, step_name, reason, now, backlog=backlog, dead=dead)
        if action == REQUEUED:
            report.requeued[reason] += 1
        elif action == FAILED:
            report.failed[reason] += 1
    _sweep_jobs(now, dead.task_ids, report)
    liveness.forget(dead)
    report.webhooks_requeued = deliveries.requeue_overdue(now)
    late = long_running(now)
    report.long_running = len(late)
    if late:
        log.warning("%d runs active for too long: %s", len(late), ", ".join(map(str, late)))
    took = time.monotonic() - started
    log.info("watchdog sweep in %.2f s: %s", took, report.counts())
    _record_sweep(report, took)
    return report


def diagnose(
    run: Run,
    now: datetime,
    dead: frozenset[str] = frozenset(),
    live: frozenset[str] | None = None,
) -> tuple[RunStep, Reason] | None:
    """The step that holds the run up and why, if the run is stuck; `dead`: the task ids
    that dead workers held, `live`: those live workers hold (None: not known)."""
    cfg = current_app.config
    waiting = None  # the step whose message the run waits for: retrying, else first pending
    for step in run.steps:
        if step.status == StepStatus.WAITING:
            return None  # parked for its engine: the engine probe resumes it
        if step.status == StepStatus.RUNNING:
            return (step, Reason.STALE) if abandoned(step, now) else None
        if step.status == StepStatus.RETRYING:
            waiting = step
            break
    else:
        waiting = next((s for s in run.steps if s.status == StepStatus.PENDING), None)
    if waiting is None:
        return None
    if waiting.task_id in dead:
        return waiting, Reason.DEAD
    if waiting.status == StepStatus.RETRYING:
        due = waiting.next_attempt_at or now
        late = now - due > timedelta(seconds=cfg["WATCHDOG_RETRY_GRACE"])
        return (waiting, Reason.OVERDUE) if late else None
    held = None if live is None else waiting.task_id in live
    reason = _silent_too_long(run, now, held)
    return (waiting, reason) if reason else None


def _silent_too_long(run: Run, now: datetime, held: bool | None) -> Reason | None:
    """Why a run waiting on a message has lost it, by how long nothing happened: sooner
    when no worker holds the message (`held` False), later when that is not known (None)."""
    moments = [run.created_at, run.queued_at]
    moments += [t for s in run.steps for t in (s.started_at, s.finished_at)]
    idle = (now - max(t for t in moments if t is not None)).total_seconds()
    lost_after = current_app.config["WATCHDOG_LOST_AFTER"]
    if held is False:
        orphan_after = min(current_app.config["WATCHDOG_ORPHAN_AFTER"], lost_after)
        return Reason.ORPHANED if idle > orphan_after else None
    return Reason.LOST if idle > lost_after else None


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
    run_id: uuid.UUID,
    step_name: str,
    reason: Reason,
    now: datetime,
    *,
    backlog: Callable[[], bool],
    dead: liveness.Dead,
) -> str | None:
    """Requeue or fail the stuck step, if the run is still stuck at it under the run's lock."""
    run = lock_run(run_id)
    found = None
    if run is not None and run.status in ACTIVE_RUN_STATUSES:
        found = diagnose(run, now, dead.task_ids, dead.live)
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
    return f"{step.name} was {step.status}; {_why(reason)}"


def _why(reason: Reason) -> str:
    cfg = current_app.config
    if reason == Reason.STALE:
        return f"no heartbeat for over {cfg['STALE_AFTER']:.0f} s: its worker vanished"
    if reason == Reason.OVERDUE:
        return f"its retry is over {cfg['WATCHDOG_RETRY_GRACE']:.0f} s late: its worker vanished"
    if reason == Reason.DEAD:
        return (
            "the worker holding its message died (no sign of life for "
            f"{cfg['WORKER_LIVENESS_TTL']:.0f} s)"
        )
    if reason == Reason.ORPHANED:
        return (
            f"nothing happened for {cfg['WATCHDOG_ORPHAN_AFTER']:.0f} s, no worker holds it "
            "and the queue is empty: its message was lost"
        )
    return f"nothing happened for {cfg['WATCHDOG_LOST_AFTER']:.0f} s: its message was lost"


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


# -- site jobs --------------------------------------------------------------------------------


def diagnose_job(job: SiteJob, now: datetime, dead: frozenset[str] = frozenset()) -> Reason | None:
    """Why an active job is stuck, if it is. Its `updated_at` is its heartbeat while it runs
    (`job_execution.heartbeat`); what it does now is told by its latest lifecycle event."""
    cfg = current_app.config
    silent = now - job.updated_at
    phase = job_execution.phase(job.id)
    if phase == job_execution.Phase.RUNNING:
        return Reason.STALE if silent > timedelta(seconds=cfg["STALE_AFTER"]) else None
    if job.task_id in dead:
        return Reason.DEAD
    if phase == job_execution.Phase.BACKOFF:
        # Its retry is due STEP_RETRY_BACKOFF_MAX s after it was scheduled, at the latest.
        due = timedelta(seconds=cfg["STEP_RETRY_BACKOFF_MAX"] + cfg["WATCHDOG_RETRY_GRACE"])
        return Reason.OVERDUE if silent > due else None
    lost = silent > timedelta(seconds=cfg["WATCHDOG_LOST_AFTER"])
    return Reason.LOST if lost else None


def _sweep_jobs(now: datetime, dead: frozenset[str], report: Report) -> None:
    active = db.session.execute(select(SiteJob).where(SiteJob.status.in_(ACTIVE_JOB_STATUSES)))
    stuck = [
        (job.id, reason) for job in active.scalars() if (reason := diagnose_job(job, now, dead))
    ]
    changes.rollback()
    if not stuck:
        return
    cfg = current_app.config
    job_queue = cfg["BENCH_QUEUE"] if cfg["SITE_BACKEND"] == "bench" else None
    backlog = cache(lambda: queue.depth(job_queue) != 0)
    for job_id, reason in stuck:
        if reason in QUEUE_MUST_BE_EMPTY and backlog():
            continue
        action = _recover_job(job_id, reason, now, dead)
        if action == REQUEUED:
            report.jobs_requeued[reason] += 1
        elif action == FAILED:
            report.jobs_failed[reason] += 1


def _recover_job(
    job_id: uuid.UUID, reason: Reason, now: datetime, dead: frozenset[str]
) -> str | None:
    """Requeue the job with a new task id (the old message, if it comes back, is refused),
    or fail it after WATCHDOG_MAX_REQUEUES requeues since it was created or retried."""
    job = lock_job(job_id)
    if (
        job is None
        or job.status not in ACTIVE_JOB_STATUSES
        or diagnose_job(job, now, dead) != reason
    ):
        changes.rollback()  # it moved meanwhile
        return None
    why = f"the job was {job_execution.phase(job.id)}; {_why(reason)}"
    if _job_requeues(job) >= current_app.config["WATCHDOG_MAX_REQUEUES"]:
        limit = current_app.config["WATCHDOG_MAX_REQUEUES"]
        job_execution.give_up(
            job, sites.PermanentSiteError(f"the watchdog gave up after {limit} requeues: {why}")
        )
        changes.commit()
        log.warning("watchdog failed site job %s: %s", job.id, why)
        return FAILED
    job.task_id = str(uuid.uuid4())
    job.message = f"requeued by the watchdog: {why}"
    job_event(job, REQUEUED, job.message)
    changes.commit()
    log.warning("watchdog requeued site job %s: %s", job.id, why)
    with suppress(QueueUnavailable):  # logged; the job stays stuck, a later sweep retries
        dispatch.publish(jobs.signature(job))
    return REQUEUED


def _job_requeues(job: SiteJob) -> int:
    since = (
        select(func.coalesce(func.max(SiteJobEvent.id), 0))
        .where(SiteJobEvent.job_id == job.id, SiteJobEvent.kind.in_(("created", "retry")))
        .scalar_subquery()
    )
    return db.session.execute(
        select(func.count()).where(
            SiteJobEvent.job_id == job.id, SiteJobEvent.kind == REQUEUED, SiteJobEvent.id > since
        )
    ).scalar_one()


# -- the sweep's lock and record (Redis) ------------------------------------------------------


@contextmanager
def _sweep_lock() -> Iterator[bool]:
    """True when this sweep may run: it holds the lock, or there is no Redis to hold one in
    (overlapping sweeps are then still safe, each recovery is decided under a row lock)."""
    r = liveness.client()
    lock = None
    if r is not None:
        limit = current_app.config["WATCHDOG_SWEEP_LIMIT"]
        lock = r.lock(liveness.key("watchdog", "lock"), timeout=limit, blocking=False)
        try:
            if not lock.acquire():
                yield False
                return
        except redis.RedisError as exc:
            log.warning("watchdog sweep lock not taken (%s); sweeping without it", exc)
            lock = None
    try:
        yield True
    finally:
        if lock is not None:
            with suppress(redis.RedisError):  # expired (a sweep over its limit) or Redis gone
                lock.release()


def _record_sweep(report: Report, took: float) -> None:
    r = liveness.client()
    if r is None:
        return
    try:
        with r.pipeline() as pipe:
            pipe.hset(
                liveness.key("watchdog", "last"),
                mapping={"at": time.time(), "seconds": took, "counts": json.dumps(report.counts())},
            )
            pipe.hincrby(liveness.key("watchdog", "sweeps"), "ran", 1)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("watchdog sweep not recorded (%s)", exc)


def _count_sweep(outcome: str) -> None:
    r = liveness.client()
    if r is not None:
        with suppress(redis.RedisError):
            r.hincrby(liveness.key("watchdog", "sweeps"), outcome, 1)


def last_sweep() -> dict[str, Any] | None:
    """The latest sweep's end (`at`, Unix time), length, counts, and sweeps so far by outcome;
    None when there is no Redis or it cannot be read."""
    r = liveness.client()
    if r is None:
        return None
    try:
        last = r.hgetall(liveness.key("watchdog", "last"))
        sweeps = r.hgetall(liveness.key("watchdog", "sweeps"))
    except redis.RedisError:
        return None
    return {
        "at": float(last["at"]) if last else None,
        "seconds": float(last["seconds"]) if last else None,
        "counts": json.loads(last["counts"]) if last else {},
        "sweeps": {outcome: int(n) for outcome, n in sweeps.items()},
    }
