"""A run's steps as one Celery chain: task ids, labels and stamps; publishing and revoking it.

Chain links carry only the run id (plus labels for Flower); each link has a task id
chosen up front and written on its step row, so a delivery can tell whether it is the
one the database expects, and a cancel can revoke exactly the run's tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from celery import chain
from celery.canvas import Signature, StampingVisitor
from flask import current_app

from provisioner.models import Run, RunStep, StepStatus
from provisioner.models.types import utcnow
from provisioner.observability import context as log_context
from provisioner.orchestration import budgets, dispatch
from provisioner.orchestration.transitions import lock_run
from provisioner.steps import BY_NAME

TASK_PREFIX = "provisioner.steps."


class RunStamp(StampingVisitor):
    """Stamps every task of one publication of a run, so they can be revoked together.

    The stamp names the run and the publication (its `queued_at`): revoking a cancelled
    run's chain must not also revoke the chain that later continues it.
    """

    def __init__(self, run: Run) -> None:
        self.run_id = str(run.id)
        self.dispatch = dispatch_key(run)
        # The logs of every task of the chain carry the id of the request that published it.
        self.correlation_id = log_context.correlation_id()

    def on_signature(self, sig: Signature, **headers: Any) -> dict[str, Any]:
        stamps = {"run_id": self.run_id, "dispatch": self.dispatch}
        if self.correlation_id:
            stamps["correlation_id"] = self.correlation_id
        return stamps


def dispatch_key(run: Run) -> str:
    queued = run.queued_at.isoformat() if run.queued_at else "never"
    return f"{run.id}@{queued}"


def task_name(step: str) -> str:
    return TASK_PREFIX + step


def assign_task_ids(steps: Iterable[RunStep]) -> None:
    """Give each step to be run a fresh task id (before the commit that precedes publishing)."""
    for step in steps:
        step.task_id = str(uuid.uuid4())


def restart_from(run: Run, step: RunStep) -> list[RunStep]:
    """The steps of a new chain that takes the run up again at `step`: it and the pending
    steps after it, with fresh task ids (a message of the old chain that turns up later is
    refused), stamped as a new publication. Publish them after the commit."""
    to_run = [s for s in run.steps if s is step or s.status == StepStatus.PENDING]
    assign_task_ids(to_run)
    run.queued_at = utcnow()
    return to_run


def step_signature(run: Run, step: RunStep, **kwargs: Any) -> Signature:
    total = len(run.steps)
    soft, hard = budgets.step_limits(BY_NAME[step.name], current_app.config)
    return dispatch.celery_app().signature(
        task_name(step.name),
        args=(str(run.id),),
        kwargs={
            "origin": "chain",
            "tenant": run.tenant.slug,
            "position": f"{step.position}/{total}",
            **kwargs,
        },
        immutable=True,
        task_id=step.task_id,
        soft_time_limit=soft,
        time_limit=hard,
    )


def canvas(run: Run, steps: Sequence[RunStep]) -> Signature:
    """The steps as one chain of immutable signatures, stamped with the run's publication."""
    work = chain(*(step_signature(run, step) for step in steps))
    work.stamp(visitor=RunStamp(run))
    return work


def publish(run: Run, steps: Sequence[RunStep]) -> None:
    """Publish the steps' chain; QueueUnavailable if the broker cannot be reached."""
    dispatch.publish(canvas(run, steps))


def publish_or_undo(run: Run, steps: Sequence[RunStep], undo: Any) -> None:
    """Publish the steps' chain (nothing if there are none), or undo the change and raise."""
    if steps:
        dispatch.publish_or_undo(canvas(run, steps), lambda: lock_run(run.id), undo)


def revoke_publication(publication: str, task_ids: Sequence[str]) -> None:
    """Revoke one publication of a run (`dispatch_key`): by its stamp, and by id for the
    tasks we know; the run's later publications are left alone."""
    dispatch.revoke(task_ids, stamps={"dispatch": publication})
