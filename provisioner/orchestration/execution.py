"""What a worker records while it executes a step: claim, retry, complete, fail, heartbeat.

A delivery of a step task runs the step only if the database agrees it should: the run
is active and the step row expects this task id (ids are chosen when a chain is
published), so redelivered, duplicated or stale messages do nothing harmful.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import Engine, inspect, update

from provisioner.engine import EngineError
from provisioner.models import Run, RunStatus, RunStep, StepStatus, Tenant
from provisioner.models.status import (
    ACTIVE_RUN_STATUSES,
    SETTLED_STEP_STATUSES,
    UNFINISHED_STEP_STATUSES,
)
from provisioner.models.types import utcnow
from provisioner.orchestration import changes
from provisioner.orchestration.transitions import (
    event,
    lock_run,
    mark_not_reached,
    set_run_status,
    set_step_status,
    settle,
)
from provisioner.steps.base import StepResult

log = logging.getLogger(__name__)

HOST = socket.gethostname()
# A delivery that finds its step running elsewhere waits until the other holder's heartbeat
# is STALE_AFTER + CLAIM_GRACE_SECONDS old at most (tasks.step_task, budgets).
CLAIM_GRACE_SECONDS = 5.0


class Action(StrEnum):
    RUN = "run"  # execute the step now
    PASS = "pass"  # the step is done already; let the chain go on
    STOP = "stop"  # do nothing and end this chain here
    WAIT = "wait"  # the same task may still be running elsewhere; ask again shortly


@dataclass(frozen=True)
class Claim:
    action: Action
    reason: str = ""
    run_id: uuid.UUID | None = None
    # A copy of the tenant's row, out of the session (RUN only): the claim's commit
    # expires the row, and the step's context would read it again.
    tenant: Tenant | None = None
    attempt: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # A manual rerun of the next step of an active run takes over its chain.
    took_over_chain: bool = False


def worker_identity() -> str:
    return f"{HOST}:{os.getpid()}"


def claim(
    run_id: str,
    step_name: str,
    *,
    task_id: str,
    manual: bool,
    next_task_id: str | None = None,
) -> Claim:
    """Decide what this delivery does, and if it runs the step, mark it running."""
    try:
        run = lock_run(run_id)
    except ValueError:
        run = None
    step = _find(run, step_name)
    if run is None or step is None:
        changes.rollback()
        return Claim(Action.STOP, f"run {run_id} has no step {step_name}")
    verdict = (
        _manual_verdict(run, step, task_id)
        if manual
        else _chain_verdict(run, step, task_id, next_task_id)
    )
    if verdict is not None:
        changes.rollback()
        return verdict
    if step.status == StepStatus.RUNNING:
        event(run, "step_taken_over", step=step, message=f"{step.worker} stopped answering")
    step.attempts += 1
    step.manual_attempts += int(manual)
    step.task_id = task_id
    step.worker = worker_identity()
    set_step_status(step, StepStatus.RUNNING)
    if run.status == RunStatus.PENDING:
        set_run_status(run, RunStatus.IN_PROGRESS)
        event(run, "run_started")
    if run.status == RunStatus.IN_PROGRESS:
        run.current_step = step.name
    event(
        run,
        "manual_rerun" if manual else "step_started",
        step=step,
        message=f"attempt {step.attempts} on {step.worker}",
    )
    result = Claim(
        Action.RUN,
        run_id=run.id,
        tenant=_detached(run.tenant),
        attempt=step.attempts,
        options=dict(run.options or {}),
        metadata=dict(run.meta or {}),
        took_over_chain=manual and run.status in ACTIVE_RUN_STATUSES,
    )
    changes.commit()
    return result


def _manual_verdict(run: Run, step: RunStep, task_id: str) -> Claim | None:
    """A person reruns a step: any step of a finished run, or the next step of an active one."""
    own_retry = step.status == StepStatus.RETRYING and step.task_id == task_id
    busy = step.status in (StepStatus.RUNNING, StepStatus.RETRYING) and not abandoned(step)
    if busy and not own_retry:
        return Claim(Action.STOP, f"{step.name} is {step.status} in task {step.task_id}")
    if run.status in ACTIVE_RUN_STATUSES and any(
        s.position < step.position and s.status in UNFINISHED_STEP_STATUSES for s in run.steps
    ):
        return Claim(Action.STOP, "the run is active and earlier steps are unfinished")
    return None


def _chain_verdict(run: Run, step: RunStep, task_id: str, next_task_id: str | None) -> Claim | None:
    if run.status not in ACTIVE_RUN_STATUSES:
        return Claim(Action.STOP, f"the run is {run.status}")
    status = step.status
    if status in SETTLED_STEP_STATUSES:
        live_next = next_task_id and any(
            s.task_id == next_task_id and s.status == StepStatus.PENDING for s in run.steps
        )
        return Claim(Action.PASS if live_next else Action.STOP, f"{step.name} is {status}")
    if step.task_id != task_id:
        return Claim(Action.STOP, f"{step.name} expects task {step.task_id}, not this one")
    own_earlier_attempt = step.worker == worker_identity()  # this process, now free again
    if status == StepStatus.RUNNING and not own_earlier_attempt and not abandoned(step):
        return Claim(Action.WAIT, f"{step.name} may still be running on {step.worker}")
    if status in (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.RETRYING):
        return None
    return Claim(Action.STOP, f"{step.name} is {status}")


def abandoned(step: RunStep, now: datetime | None = None) -> bool:
    """True when the process running the step is gone (dead here, or silent for too long)."""
    now = now or utcnow()
    stale_after = timedelta(seconds=current_app.config["STALE_AFTER"])
    if step.heartbeat_at is None or now - step.heartbeat_at > stale_after:
        return True
    host, _, pid = (step.worker or "").rpartition(":")
    if host == HOST and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def record_retry(
    run_id: str, step_name: str, task_id: str, error: BaseException, countdown: float
) -> None:
    owned = _owned(run_id, step_name, task_id)
    if owned is None:
        return
    run, step = owned
    set_step_status(step, StepStatus.RETRYING)
    step.next_attempt_at = utcnow() + timedelta(seconds=countdown)
    step.error = error_summary(error)
    event(
        run,
        "step_retrying",
        step=step,
        message=f"retry in {countdown:.0f} s: {error}",
        data={"delay_s": countdown, "reason": type(error).__name__},
    )
    changes.commit()


def park(
    run_id: str,
    step_name: str,
    task_id: str,
    error: BaseException,
    *,
    until: datetime,
    attempted: bool,
) -> bool:
    """Let the step wait for its engine until `until` (the engine probe resumes it); False,
    changing nothing, once it has waited RUN_TRANSIENT_DEADLINE: the caller fails it.

    `attempted` False: the attempt never called the engine (its site was known to be down)
    and does not count as one.
    """
    owned = _owned(run_id, step_name, task_id)
    if owned is None:
        return True  # not this task's any more: nothing to record, nothing to fail
    run, step = owned
    now = utcnow()
    since = step.waiting_since or now
    if now - since > timedelta(seconds=current_app.config["RUN_TRANSIENT_DEADLINE"]):
        changes.rollback()
        return False
    if not attempted:
        step.attempts -= 1
    set_step_status(step, StepStatus.WAITING)
    step.waiting_since = since
    step.next_attempt_at = until
    step.error = error_summary(error)
    event(
        run,
        "step_waiting",
        step=step,
        message=f"waiting for the engine, next try at {until:%H:%M:%S} UTC: {error}",
        data={"reason": type(error).__name__, "next_probe_at": until.isoformat()},
    )
    settle(run)
    changes.commit()
    return True


def complete(
    run_id: str, step_name: str, task_id: str, outcome: StepResult, attempt_ms: int
) -> bool:
    """Record success; True when the chain should go on to the next step."""
    owned = _owned(run_id, step_name, task_id, also=(StepStatus.CANCELLED,))
    if owned is None:
        return False
    run, step = owned
    set_step_status(step, StepStatus.COMPLETED)
    step.error = None
    step.result = _result(outcome)
    run.meta = {**(run.meta or {}), **outcome.metadata}
    event(
        run,
        "step_completed",
        step=step,
        duration_ms=attempt_ms,
        message="; ".join(outcome.notes) or None,
    )
    settle(run)
    going_on = run.status in ACTIVE_RUN_STATUSES
    changes.commit()
    return going_on


def fail(
    run_id: str,
    step_name: str,
    task_id: str,
    error: Exception,
    *,
    critical: bool,
    attempt_ms: int,
    partial: StepResult | None = None,
) -> None:
    """Record a final failure; a critical one fails the run and marks the rest not reached.
    (A waiting step fails too: it waited for its engine too long.)"""
    owned = _owned(run_id, step_name, task_id, also=(StepStatus.CANCELLED, StepStatus.WAITING))
    if owned is None:
        return
    run, step = owned
    set_step_status(step, StepStatus.FAILED)
    step.error = error_summary(error)
    if partial is not None:
        step.result = _result(partial)
        run.meta = {**(run.meta or {}), **partial.metadata}
    event(run, "step_failed", step=step, duration_ms=attempt_ms, message=str(error))
    if run.status in ACTIVE_RUN_STATUSES:
        if critical:
            mark_not_reached(run, step, f"not reached: {step.name} failed")
        settle(run)
    changes.commit()


def heartbeat(engine: Engine, run_id: str, step_name: str, task_id: str) -> None:
    """Refresh the step's heartbeat from a side thread (own connection, no ORM session)."""
    with engine.begin() as conn:
        conn.execute(
            update(RunStep)
            .where(
                RunStep.run_id == uuid.UUID(run_id),
                RunStep.name == step_name,
                RunStep.task_id == task_id,
                RunStep.status == StepStatus.RUNNING,
            )
            .values(heartbeat_at=utcnow())
        )


def error_summary(error: BaseException) -> dict[str, Any]:
    """What is stored and shown of an error: class, plain message, engine answer summary."""
    summary: dict[str, Any] = {"class": type(error).__name__, "message": str(error)}
    if isinstance(error, EngineError):
        summary["message"] = error.message
        summary["engine"] = error.summary()
    return summary


def _result(outcome: StepResult) -> dict[str, Any]:
    return {**outcome.result, "notes": outcome.notes} if outcome.notes else dict(outcome.result)


def _detached(tenant: Tenant) -> Tenant:
    return Tenant(**{c.key: getattr(tenant, c.key) for c in inspect(Tenant).column_attrs})


def _find(run: Run | None, name: str) -> RunStep | None:
    return next((s for s in run.steps if s.name == name), None) if run else None


def _owned(
    run_id: str, step_name: str, task_id: str, also: tuple[StepStatus, ...] = ()
) -> tuple[Run, RunStep] | None:
    """The run and step, locked, if this task still owns the step (else None)."""
    run = lock_run(run_id)
    step = _find(run, step_name)
    if (
        run is None
        or step is None
        or step.task_id != task_id
        or step.status not in (StepStatus.RUNNING, *also)
    ):
        log.warning(
            "step %s of run %s is no longer this task's (%s); its outcome is not recorded",
            step_name,
            run_id,
            step.status if step else "missing",
        )
        changes.rollback()
        return None
    return run, step
