"""What every task shares: the Flask app context, and the retry discipline of steps and jobs.

`AppContextTask` runs each task inside the Flask app context, unless one is active already
(an in-process call from a test or a request), as Superset's task base does. `RetryingTask`
is the delivery and retry policy of step tasks and site job tasks alike: acknowledged after
the work (a killed worker loses nothing), retried by `autoretry_for` with exponential
backoff and full jitter capped by STEP_RETRY_BACKOFF_MAX (and never sooner than an engine's
Retry-After), each retry written to the database before it is scheduled. Both beat a
heartbeat while they work (`heartbeat`), and turn an attempt past its soft time limit into
an error of theirs (`time_limited`): a failed attempt, retried and recorded like any other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app, has_app_context
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from provisioner.engine.errors import RateLimited
from provisioner.extensions import db

log = logging.getLogger(__name__)

# The database going away (a restart, a failover) is retried like an engine hiccup: every
# state change is a short transaction, so redoing the delivery is safe.
DATABASE_DOWN = (OperationalError,)


class AppContextTask(Task):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return super().__call__(*args, **kwargs)
        with self.app.flask_app.app_context():
            return super().__call__(*args, **kwargs)


class RetryingTask(AppContextTask):
    retry_backoff = True  # 1 s, 2 s, 4 s … with full jitter
    retry_jitter = True
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True  # the database is the record; results would only fill Redis

    @property
    def retry_backoff_max(self) -> int:
        """Read by Celery when it builds the task, from the app's one source of settings."""
        return int(self.app.flask_app.config["STEP_RETRY_BACKOFF_MAX"])

    def retry(
        self, *args: Any, exc: BaseException | None = None, countdown: Any = None, **kw: Any
    ) -> Any:
        if isinstance(exc, RateLimited) and exc.retry_after:
            countdown = max(countdown or 0, exc.retry_after)
        if exc is not None and countdown is not None and self.request.retries < self.max_retries:
            try:
                self.record_retry(exc, countdown)
            except DATABASE_DOWN:
                db.session.rollback()
                log.warning("could not record the retry of %s: database unavailable", self.name)
        return super().retry(*args, exc=exc, countdown=countdown, **kw)

    def record_retry(self, exc: BaseException, countdown: float) -> None:
        """Write down that this delivery is retried in `countdown` seconds, and why."""
        raise NotImplementedError


@contextmanager
def heartbeat(name: str, beat: Callable[[Engine], None]) -> Iterator[None]:
    """Call `beat(engine)` every HEARTBEAT_INTERVAL s from a side thread while the block runs
    (the watchdog and the next delivery's claim read the heartbeat it writes)."""
    engine = db.engine
    interval = current_app.config["HEARTBEAT_INTERVAL"]
    stop = threading.Event()

    def beating() -> None:
        while not stop.wait(interval):
            try:
                beat(engine)
            except Exception:
                log.warning("heartbeat of %s failed", name, exc_info=True)

    thread = threading.Thread(target=beating, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval)


def soft_limit(task: Task) -> float:
    """This delivery's soft time limit: the message's, else the task's own."""
    _, soft = task.request.timelimit or (None, None)  # (hard, soft)
    return float(soft or task.soft_time_limit or 0)


@contextmanager
def time_limited(task: Task, error: Callable[[str], Exception]) -> Iterator[None]:
    """Turn SoftTimeLimitExceeded in the block into `error(message)`."""
    try:
        yield
    except SoftTimeLimitExceeded:
        raise error(f"not done within its time limit of {soft_limit(task):.0f} s") from None
