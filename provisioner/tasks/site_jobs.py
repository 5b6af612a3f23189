"""The site job tasks `provisioner.site_jobs.<job_type>`: thin wrappers around a backend.

Same delivery policy as the steps (autoretry_for transient errors with exponential backoff
and jitter, max_retries, acks_late, reject_on_worker_lost). The job id comes in (plus the
tenant slug, a label for Flower); nothing secret ever travels in a task's arguments.
With SITE_BACKEND=bench the tasks go to BENCH_QUEUE (see `route`), which only workers on
the engine host consume. A running job beats its heartbeat (the watchdog requeues a silent
one); an attempt past its soft time limit (the backend's budget for the job type, carried by
the message) is a transient failure: retried, recorded.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app as current_celery
from celery import shared_task

from provisioner import sites
from provisioner.models import JobType
from provisioner.observability import context as log_context
from provisioner.orchestration import job_execution, jobs
from provisioner.orchestration.jobs import TASK_PREFIX, task_name
from provisioner.tasks.base import RetryingTask, heartbeat, time_limited

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """A site job failed for good; raised so that Flower shows the task as failed."""


class SiteJobTask(RetryingTask):
    autoretry_for = (sites.TransientSiteError,)
    max_retries = 3

    @property
    def soft_time_limit(self) -> float:
        """Read by the worker for a message without limits of its own (a `celery call`)."""
        return self._limits()[0]

    @property
    def time_limit(self) -> float:
        return self._limits()[1]

    def _limits(self) -> tuple[float, float]:
        with self.app.flask_app.app_context():
            return jobs.time_limits(self.name.removeprefix(TASK_PREFIX))

    def record_retry(self, exc: BaseException, countdown: float) -> None:
        if isinstance(exc, sites.SiteJobError):
            job_execution.retrying(self.request.args[0], self.request.id, exc, countdown)


def run_job(task: SiteJobTask, job_id: str, *, tenant: str | None = None) -> str:
    """Run one site job (the body of every `provisioner.site_jobs.<job_type>` task)."""
    request = task.request
    with log_context.bound(job=job_id, tenant=tenant, attempt=request.retries):
        claim = job_execution.claim(job_id, request.id, worker=request.hostname)
        if not claim.run:
            log.info("site job delivery not run: %s", claim.reason)
            return f"not run: {claim.reason}"
        beat = heartbeat(f"job-{job_id}", lambda e: job_execution.heartbeat(e, job_id, request.id))
        try:
            with beat, time_limited(task, sites.TransientSiteError):
                action = getattr(sites.backend(), str(claim.job_type))
                outcome = action(claim.site, job_execution.Reporter(job_id, request.id))
        except sites.JobCancelled as exc:
            job_execution.stopped(job_id, str(exc))
            return "cancelled"
        except sites.TransientSiteError as exc:
            if request.retries < task.max_retries:
                raise  # autoretry_for turns this into task.retry(...) with backoff
            raise _failed(job_id, request.id, exc) from None
        except sites.SiteJobError as exc:
            raise _failed(job_id, request.id, exc) from None
        except Exception as exc:
            log.exception("site job %s raised an unexpected error", job_id)
            error = sites.PermanentSiteError(f"unexpected error: {type(exc).__name__}")
            raise _failed(job_id, request.id, error) from None
        applied = job_execution.complete(job_id, request.id, outcome)
        return "completed" if applied else "finished after a cancel; result ignored"


def _failed(job_id: str, task_id: str, exc: sites.SiteJobError) -> JobFailed:
    job_execution.fail(job_id, task_id, exc)
    return JobFailed(exc.message)


def route(name: str, *_: Any, task: Any = None, **__: Any) -> dict[str, str] | None:
    """Celery router (celeryconfig.task_routes): bench jobs go to BENCH_QUEUE."""
    if not name.startswith(TASK_PREFIX):
        return None
    config = (task.app if task is not None else current_celery).flask_app.config
    return {"queue": config["BENCH_QUEUE"]} if config["SITE_BACKEND"] == "bench" else None


SITE_JOB_TASKS = {
    job_type: shared_task(run_job, name=task_name(job_type), base=SiteJobTask, bind=True)
    for job_type in JobType
}
