"""`provisioner.verify` (one verification of a workspace) and `provisioner.verify.schedule`.

Thin, as the step tasks are: the verification id comes in (plus the tenant slug, a label for
Flower); orchestration says whether this delivery may run it, the steps read the engine, and
orchestration records the outcome. Engine errors never fail the task: what could not be
read is a check in state `unknown`. A lost database is retried (acks_late: a killed worker's
verification is delivered again and read again, which is harmless). VERIFY_TIME_LIMIT is the
soft limit (the verification is recorded as failed), 30 s more the hard one; each message
carries them (`verifications.time_limits`), these defaults serve a `celery call`.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from provisioner.observability import context as log_context
from provisioner.orchestration import verification_schedule, verifications
from provisioner.tasks.base import DATABASE_DOWN, AppContextTask, RetryingTask, soft_limit

log = logging.getLogger(__name__)

SCHEDULE_TASK = "provisioner.verify.schedule"


class VerifyTask(RetryingTask):
    autoretry_for = DATABASE_DOWN
    max_retries = 3

    @property
    def soft_time_limit(self) -> float:
        """Read by the worker when it starts, from the app's one source of settings."""
        return verifications.time_limits(self.app.flask_app.config)[0]

    @property
    def time_limit(self) -> float:
        return verifications.time_limits(self.app.flask_app.config)[1]

    def record_retry(self, exc: BaseException, countdown: float) -> None:
        log.warning("verification %s retried in %.0f s: %r", self.request.args[0], countdown, exc)


@shared_task(name=verifications.TASK, bind=True, base=VerifyTask)
def verify(task: VerifyTask, verification_id: str, *, tenant: str | None = None) -> str:
    task_id = task.request.id
    # The task id is also the correlation id the engine sees: its log shows this one's reads.
    with log_context.bound(correlation_id=task_id, verification=verification_id, tenant=tenant):
        found = verifications.claim(verification_id, task_id)
        if found is None:
            return "not run"
        try:
            findings = verifications.inspect(found)
        except SoftTimeLimitExceeded:
            limit = soft_limit(task)
            verifications.fail(verification_id, task_id, f"not done within {limit:.0f} s")
            return "failed: time limit"
        except Exception as exc:
            log.exception("verification %s raised an unexpected error", verification_id)
            verifications.fail(verification_id, task_id, f"unexpected error: {type(exc).__name__}")
            return "failed: unexpected error"
        status = verifications.record(verification_id, task_id, findings)
        log.info("verification %s: %s in %d engine reads", verification_id, status, findings.reads)
        return str(status or "result ignored: superseded")


@shared_task(name=SCHEDULE_TASK, bind=True, base=AppContextTask, ignore_result=True)
def schedule(task: AppContextTask) -> dict[str, int]:
    with log_context.bound(correlation_id=task.request.id):
        return verification_schedule.tick().counts()
