"""One generic task wrapper turns every step into `provisioner.steps.<name>`.

The wrapper owns the retry policy (autoretry_for transient errors, exponential backoff
with jitter, per-step max_retries), asks orchestration whether this delivery should run,
beats a heartbeat while the step runs, and records the outcome. It carries no state:
the run id comes in, everything else is read from and written to the database.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app

from provisioner.engine import PermanentEngineError, TransientEngineError
from provisioner.engine.breaker import SiteState, SiteUnavailable
from provisioner.observability import context as log_context
from provisioner.orchestration import budgets, context, execution, outages, runs
from provisioner.orchestration.execution import CLAIM_GRACE_SECONDS, Action
from provisioner.orchestration.locks import LockTimeout
from provisioner.steps import STEPS
from provisioner.steps.base import NonCriticalFailure, Step, StepError
from provisioner.tasks.base import DATABASE_DOWN, RetryingTask, heartbeat, time_limited

log = logging.getLogger(__name__)


class OverTimeLimit(Exception):
    """An attempt ran past its soft time limit (its step's declared budget): retried."""


RETRYABLE = (TransientEngineError, LockTimeout, OverTimeLimit)
# A delivery that finds its step running elsewhere asks again every CLAIM_POLL_SECONDS,
# until the other holder's heartbeat is STALE_AFTER + CLAIM_GRACE_SECONDS old at most.
CLAIM_POLL_SECONDS = 1.0


class StepFailed(Exception):
    """A critical step failed for good; raised so Flower shows the task as failed."""


class StepTask(RetryingTask):
    """Base class of the step tasks: the step it runs, and where its retries are recorded."""

    step: Step
    # SoftTimeLimitExceeded: the limit struck outside the step itself (claiming, recording).
    autoretry_for = (*RETRYABLE, *DATABASE_DOWN, SoftTimeLimitExceeded)

    @property
    def soft_time_limit(self) -> float:
        """Read by the worker for a message without limits of its own (a `celery call`)."""
        return budgets.step_limits(self.step, self.app.flask_app.config)[0]

    @property
    def time_limit(self) -> float:
        return budgets.step_limits(self.step, self.app.flask_app.config)[1]

    def record_retry(self, exc: BaseException, countdown: float) -> None:
        execution.record_retry(
            self.request.args[0], self.step.name, self.request.id, exc, countdown
        )


def run_step(
    task: StepTask,
    run_id: str,
    *,
    origin: str = "manual",
    resume: bool = False,
    tenant: str | None = None,
    position: str | None = None,
) -> str:
    """Execute one step of one run (the body of every `provisioner.steps.<name>` task).

    `origin` is "chain" for links of a published chain; anything else (a `celery call`)
    is a manual rerun. `tenant` and `position` are labels that make Flower readable.
    """
    request = task.request
    manual = origin != "chain"
    fields = {
        "run": run_id,
        "step": task.step.name,
        "position": position,
        "tenant": tenant,
        "attempt": request.retries,
    }
    with log_context.bound(correlation_id=_correlation_id(request), **fields):
        claim = _claim(task, run_id, manual)
        if claim.action != Action.RUN:
            log.info("step delivery not run: %s (%s)", claim.action, claim.reason)
            if claim.action != Action.PASS:
                request.chain = None  # end this chain here
            return f"{claim.action}: {claim.reason}"
        log.info("%s attempt %d started%s", task.step.name, claim.attempt, " (manual)" * manual)
        with log_context.bound(attempt=claim.attempt):
            outcome = _execute(task, run_id, claim, manual=manual, resume=resume)
            log.info("%s attempt %d: %s", task.step.name, claim.attempt, outcome)
        return outcome


def _claim(task: StepTask, run_id: str, manual: bool) -> execution.Claim:
    """Ask orchestration what to do, waiting while a previous delivery may still be alive."""
    deadline = time.monotonic() + current_app.config["STALE_AFTER"] + CLAIM_GRACE_SECONDS
    while True:
        claim = execution.claim(
            run_id,
            task.step.name,
            task_id=task.request.id,
            manual=manual,
            next_task_id=_next_link_id(task.request),
        )
        if claim.action != Action.WAIT or time.monotonic() > deadline:
            return claim
        time.sleep(CLAIM_POLL_SECONDS)


def _execute(
    task: StepTask, run_id: str, claim: execution.Claim, *, manual: bool, resume: bool
) -> str:
    step, request = task.step, task.request
    last_attempt = request.retries >= task.max_retries
    started = time.monotonic()
    site = ""
    try:
        ctx = context.build(claim)
        site = ctx.engine.credentials.site_key
        unavailable = None if manual else outages.admit(site)
        if unavailable is not None:
            raise unavailable
        with _heartbeat(run_id, step.name, request.id), time_limited(task, OverTimeLimit):
            outcome = step.run(ctx)
    except RETRYABLE as exc:
        state = outages.failed(site, exc)
        if not manual and (last_attempt or not state.available):
            return _wait(task, run_id, exc, state, started)
        if not last_attempt:
            raise  # autoretry_for turns this into task.retry(...) with backoff
        return _failed(task, run_id, exc, started, critical=step.critical)
    except NonCriticalFailure as exc:
        _record_failure(task, run_id, exc, started, critical=False, partial=exc.partial)
        return _after_manual(task, run_id, claim, resume, f"failed, not critical: {exc}")
    except (PermanentEngineError, StepError) as exc:
        outages.succeeded(site)  # an engine that refuses a request is up
        return _failed(task, run_id, exc, started, critical=step.critical)
    except Exception as exc:
        log.exception("step %s raised an unexpected error", step.name)
        return _failed(task, run_id, exc, started, critical=step.critical)
    outages.succeeded(site)
    going_on = execution.complete(run_id, step.name, request.id, outcome, _ms(started))
    if not going_on and not manual:
        request.chain = None
    return _after_manual(task, run_id, claim, resume, "completed")


def _wait(task: StepTask, run_id: str, exc: Exception, state: SiteState, started: float) -> str:
    """Park the step until its engine site's next probe (the probe resumes it), unless it
    has waited too long already: then it fails."""
    until = outages.next_try(state)
    attempted = not isinstance(exc, SiteUnavailable)
    if execution.park(
        run_id, task.step.name, task.request.id, exc, until=until, attempted=attempted
    ):
        task.request.chain = None  # the probe publishes a new chain from this step
        return f"waiting for the engine until {until:%H:%M:%S} UTC: {exc}"
    return _failed(task, run_id, outages.gave_up(exc), started, critical=task.step.critical)


def _failed(task: StepTask, run_id: str, exc: Exception, started: float, *, critical: bool) -> str:
    _record_failure(task, run_id, exc, started, critical=critical)
    if critical:
        raise StepFailed(f"{task.step.name} failed: {exc}") from None
    return f"failed, not critical: {exc}"


def _record_failure(task: StepTask, run_id: str, exc: Exception, started: float, **kw: Any) -> None:
    execution.fail(run_id, task.step.name, task.request.id, exc, attempt_ms=_ms(started), **kw)


def _after_manual(
    task: StepTask, run_id: str, claim: execution.Claim, resume: bool, what: str
) -> str:
    if claim.took_over_chain or resume:
        runs.follow_on(run_id, task.step.name, actor=f"celery call {task.request.id}")
    return what


def _heartbeat(run_id: str, step_name: str, task_id: str) -> Any:
    return heartbeat(
        step_name, lambda engine: execution.heartbeat(engine, run_id, step_name, task_id)
    )


def _next_link_id(request: Any) -> str | None:
    """The task id of the next link of this chain, if any (chains are stored reversed)."""
    remaining = request.chain or []
    if not remaining:
        return None
    options = remaining[-1].get("options") or {}
    return options.get("task_id")


def _correlation_id(request: Any) -> str:
    stamps = getattr(request, "stamps", None) or {}
    value = stamps.get("correlation_id") or getattr(request, "correlation_id", None)
    if isinstance(value, list):
        value = value[0] if value else None
    return value or request.id


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _register(step: Step) -> StepTask:
    """Create the Celery task `provisioner.steps.<name>` for one step."""
    return shared_task(
        run_step,
        name=f"provisioner.steps.{step.name}",
        base=StepTask,
        bind=True,
        max_retries=step.max_retries,
        step=step,
    )


STEP_TASKS = {step.name: _register(step) for step in STEPS}
