"""What every task shares: the Flask app context, and the retry discipline of steps and jobs.

`AppContextTask` runs each task inside the Flask app context, unless one is active already
(an in-process call from a test or a request), as Superset's task base does. `RetryingTask`
is the delivery and retry policy of step tasks and site job tasks alike: acknowledged after
the work (a killed worker loses nothing), retried by `autoretry_for` with exponential
backoff and full jitter capped by STEP_RETRY_BACKOFF_MAX (and never sooner than an engine's
Retry-After), each retry written to the database before it is scheduled.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from flask import has_app_context
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
