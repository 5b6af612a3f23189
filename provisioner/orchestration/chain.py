"""Publishing a run's steps as one Celery chain, and revoking it.

Chain links carry only the run id (plus labels for Flower); each link has a task id
chosen up front and written on its step row, so a delivery can tell whether it is the
one the database expects, and a cancel can revoke exactly the run's tasks.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Celery, chain
from celery.canvas import Signature, StampingVisitor
from flask import current_app
from kombu.exceptions import OperationalError

from provisioner.models import Run, Step
from provisioner.observability import context as log_context

log = logging.getLogger(__name__)

TASK_PREFIX = "provisioner.steps."
# Publishing must fail fast when the broker is down: the API answers 503 instead.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class QueueUnavailable(Exception):
    """The broker could not be reached; nothing was published."""


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


def celery_app() -> Celery:
    return current_app.extensions["celery"]


def task_name(step: str) -> str:
    return TASK_PREFIX + step


def assign_task_ids(steps: Iterable[Step]) -> None:
    """Give each step to be run a fresh task id (before the commit that precedes publishing)."""
    for step in steps:
        step.task_id = str(uuid.uuid4())


def step_signature(run: Run, step: Step, **kwargs: Any) -> Signature:
    total = len(run.steps)
    return celery_app().signature(
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
    )


def publish(run: Run, steps: Sequence[Step]) -> None:
    """Publish the steps as one chain of immutable signatures; QueueUnavailable on failure."""
    if not steps:
        return
    canvas = chain(*(step_signature(run, step) for step in steps))
    canvas.stamp(visitor=RunStamp(run))
    try:
        canvas.apply_async(retry=True, retry_policy=PUBLISH_RETRY)
    except (OperationalError, OSError) as exc:
        log.error("could not publish run %s: %s", run.id, exc)
        raise QueueUnavailable(str(exc)) from exc


def revoke(dispatch: str, task_ids: Sequence[str], *, terminate: bool) -> None:
    """Revoke one publication of a run on every worker: by stamp, and by id for those we know.

    Best effort: the database already says the run is cancelled, and every delivery checks
    it before doing anything, so a revoke lost with a broker outage changes nothing.
    """
    control = celery_app().control
    try:
        control.revoke_by_stamped_headers({"dispatch": dispatch}, terminate=terminate)
        if task_ids:
            control.revoke(list(task_ids), terminate=terminate)
    except (OperationalError, OSError) as exc:
        log.warning("could not broadcast the revoke of %s: %s", dispatch, exc)
