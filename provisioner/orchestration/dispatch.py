"""Handing work to the broker, for runs and site jobs alike: publish or undo, and revoke.

Commands change the database under a row lock, commit, and only then publish. If the
broker cannot take the work, `publish_or_undo` puts the rows back as `Undo` saved them
before the change, in a transaction of its own, and raises QueueUnavailable (the API
answers 503): nothing is left half-made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from celery import Celery
from celery.canvas import Signature
from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import inspect

from provisioner.errors import QueueUnavailable
from provisioner.extensions import db
from provisioner.orchestration import changes

log = logging.getLogger(__name__)

# Publishing must fail fast when the broker is down: the API answers 503 instead.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Seconds from a task's soft time limit (it handles SoftTimeLimitExceeded) to its hard one
# (its pool process is killed).
HARD_LIMIT_MARGIN = 30.0
# Counters of what a page shows live only ever go forward, even when a change is undone.
_FORWARD_ONLY = frozenset({"version", "status_doc", "live_version"})


def celery_app() -> Celery:
    celery: Celery = current_app.extensions["celery"]
    return celery


def time_limits(soft: float) -> tuple[float, float]:
    """A task's (soft, hard) time limits. They travel with each message, so the process that
    publishes sets them."""
    return soft, soft + HARD_LIMIT_MARGIN


def publish(work: Signature) -> None:
    """Send a signature or a canvas to the broker; QueueUnavailable if it cannot be reached."""
    try:
        work.apply_async(retry=True, retry_policy=PUBLISH_RETRY)
    except (OperationalError, OSError) as exc:
        log.error("could not publish %s: %s", work, exc)
        raise QueueUnavailable(str(exc)) from exc


class Undo:
    """The columns of some rows as they are now, to put back if publishing fails."""

    def __init__(self, *rows: Any) -> None:
        self._saved = [
            (type(row), inspect(row).identity, _columns(row)) for row in rows if row is not None
        ]

    def __call__(self) -> None:
        for model, key, values in self._saved:
            row = db.session.get(model, key)
            for name, value in values.items():
                setattr(row, name, value)


def publish_or_undo(work: Signature, relock: Callable[[], Any], undo: Callable[[], None]) -> None:
    """Publish committed work; if the broker refuses it, undo the change and raise."""
    try:
        publish(work)
    except QueueUnavailable:
        relock()
        undo()
        changes.commit()
        raise


def revoke(task_ids: Iterable[str] = (), *, stamps: Mapping[str, str] | None = None) -> None:
    """Revoke tasks on every worker, terminating any that runs: by id, and by stamped header.

    Best effort: the database already says the work is cancelled, and every delivery checks
    it before doing anything, so a revoke lost with a broker outage changes nothing.
    """
    control = celery_app().control
    ids = list(task_ids)
    try:
        if stamps:
            control.revoke_by_stamped_headers(dict(stamps), terminate=True)
        if ids:
            control.revoke(ids, terminate=True)
    except (OperationalError, OSError) as exc:
        log.warning("could not broadcast the revoke of %s: %s", stamps or ids, exc)


def _columns(row: Any) -> dict[str, Any]:
    attributes = inspect(row).mapper.column_attrs
    return {a.key: getattr(row, a.key) for a in attributes if a.key not in _FORWARD_ONLY}
