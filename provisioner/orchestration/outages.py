"""Engine outages: steps wait for an unavailable engine site instead of failing.

The workers ask the site's breaker (engine/breaker.py) before a step runs, and tell it how
each attempt went. A step kept from its engine, by an open breaker or by transient
failures that used up its retries, is parked (`execution.park`): status `waiting`, its
next try at the site's next probe. The engine probe (`tick`, a beat task every
ENGINE_PROBE_TICK s) then, per site with waiting steps: probes an open site when its
probe is due, lets a few steps try a site that answers again (half-open), resumes the
rest once the site is closed, and fails the steps that have waited RUN_TRANSIENT_DEADLINE.
A resumed step gets a new chain and fresh retries: waiting costs no retry budget.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from flask import current_app
from sqlalchemy import select

from provisioner.engine import breaker
from provisioner.engine.breaker import BreakerStatus, SiteState, SiteUnavailable
from provisioner.engine.client import EngineCredentials
from provisioner.engine.errors import EngineError
from provisioner.errors import QueueUnavailable
from provisioner.extensions import db
from provisioner.models import Run, RunStep, StepStatus, Tenant
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.orchestration import chain, changes, engines, execution
from provisioner.orchestration.transitions import event, lock_run, set_step_status

log = logging.getLogger(__name__)

RESUMED = "step_resumed"


# -- what the workers ask and tell --------------------------------------------------------------


def admit(site: str) -> SiteUnavailable | None:
    """None if a step may call the site now; else why it must wait."""
    found = breaker.current()
    if found is None:
        return None
    try:
        state = found.state(site)
    except redis.RedisError as exc:
        log.warning("engine breaker unavailable, calling the engine anyway: %s", exc)
        return None
    return None if state.available else SiteUnavailable(state)


def failed(site: str, exc: BaseException) -> SiteState:
    """Count a transient failure against the site; the site's state after it."""
    found = breaker.current()
    if found is None or not breaker.counts_as_outage(exc):
        return _state_or_closed(found, site)
    try:
        state = found.failed(site, breaker.outage_reason(exc))
    except redis.RedisError:
        return SiteState(site)
    if state.status == BreakerStatus.OPEN:
        log.warning("engine site %s is unavailable: %s", site, state.reason)
    return state


def succeeded(site: str) -> None:
    """The site answered a whole step: it is available."""
    found = breaker.current()
    if found is None:
        return
    try:
        if found.succeeded(site):
            log.info("engine site %s is available again", site)
    except redis.RedisError:
        pass


def unavailable_sites() -> list[SiteState]:
    """The engine sites whose breaker is open or half-open ([] without a breaker)."""
    found = breaker.current()
    if found is None:
        return []
    try:
        return found.sites()
    except redis.RedisError:
        return []


def next_try(state: SiteState) -> datetime:
    """When a step parked for `state` is tried again: at the site's next probe."""
    interval = current_app.config["BREAKER_PROBE_INTERVAL"]
    at = state.next_probe_at if state.status == BreakerStatus.OPEN else None
    return datetime.fromtimestamp(at, UTC) if at else utcnow() + timedelta(seconds=interval)


def _state_or_closed(found: breaker.Breaker | None, site: str) -> SiteState:
    if found is None:
        return SiteState(site)
    try:
        return found.state(site)
    except redis.RedisError:
        return SiteState(site)


# -- the engine probe ---------------------------------------------------------------------------


@dataclass
class Report:
    probed: Counter[str] = field(default_factory=Counter)  # "up" / "down"
    resumed: int = 0
    rescheduled: int = 0
    gave_up: int = 0

    def counts(self) -> dict[str, int]:
        return {
            **{f"probed_{outcome}": n for outcome, n in self.probed.items()},
            "resumed": self.resumed,
            "rescheduled": self.rescheduled,
            "gave_up": self.gave_up,
        }


@dataclass(frozen=True)
class Waiting:
    run_id: uuid.UUID
    step: str
    credentials: EngineCredentials
    next_attempt_at: datetime
    waiting_since: datetime


def tick(now: datetime | None = None) -> Report:
    """One pass over the engine sites that have steps waiting for them."""
    now = now or utcnow()
    report = Report()
    report.gave_up = _give_up(now)
    found = breaker.current()
    for site, waiting in _waiting_by_site().items():
        try:
            _tick_site(found, site, waiting, now, report)
        except Exception:  # one site's trouble must not keep the others waiting
            changes.rollback()
            log.exception("engine probe of %s failed", site)
    if report.gave_up or report.resumed or report.probed:
        log.info("engine probe: %s", report.counts())
    return report


def _tick_site(
    found: breaker.Breaker | None, site: str, waiting: list[Waiting], now: datetime, report: Report
) -> None:
    state = _state_or_closed(found, site)
    probed = found is not None and state.probe_due(now.timestamp())
    if found is not None and probed:
        state = _probe(found, site, waiting[0].credentials, report)
    if state.status == BreakerStatus.OPEN:
        report.rescheduled += _reschedule(waiting, next_try(state))
    elif state.status == BreakerStatus.HALF_OPEN:
        if found is not None and probed:  # the trials; the rest when one of them succeeds
            report.resumed += sum(_resume(w, state) for w in waiting[: found.trials])
    else:
        report.resumed += sum(_resume(w, state) for w in waiting if w.next_attempt_at <= now)


def _probe(
    found: breaker.Breaker, site: str, credentials: EngineCredentials, report: Report
) -> SiteState:
    """Ask the site whether it answers, signed in as one of the tenants that wait for it."""
    client = engines.client_for(credentials)
    timeout = current_app.config["ENGINE_PROBE_TIMEOUT"]
    client.timeout = (timeout, timeout)
    try:
        client.logged_user()
    except EngineError as exc:
        if breaker.counts_as_outage(exc):
            report.probed["down"] += 1
            state = found.probe_failed(site, breaker.outage_reason(exc))
            log.info("engine site %s still unavailable: %s", site, state.reason)
            return state
    report.probed["up"] += 1
    log.info("engine site %s answers again: %d steps may try it", site, found.trials)
    return found.half_open(site)


def _waiting_by_site() -> dict[str, list[Waiting]]:
    """The waiting steps of active runs, by engine site, those waiting longest first."""
    rows = db.session.execute(
        select(RunStep.run_id, RunStep.name, RunStep.next_attempt_at, RunStep.waiting_since, Tenant)
        .join(Run, Run.id == RunStep.run_id)
        .join(Tenant, Tenant.id == Run.tenant_id)
        .where(RunStep.status == StepStatus.WAITING, Run.status.in_(ACTIVE_RUN_STATUSES))
        .order_by(RunStep.waiting_since, RunStep.id)
    ).all()
    by_site: dict[str, list[Waiting]] = defaultdict(list)
    for run_id, name, next_at, since, tenant in rows:
        creds = engines.credentials_for(tenant)
        at = next_at or utcnow()
        by_site[creds.site_key].append(Waiting(run_id, name, creds, at, since or at))
    changes.rollback()
    return by_site


def _resume(item: Waiting, state: SiteState) -> int:
    """Send one waiting step on its way again: a new chain from it, fresh retries."""
    run, step = _locked_waiting(item.run_id, item.step)
    if run is None or step is None:
        return 0
    why = "trying again" if state.status == BreakerStatus.CLOSED else "its engine answers again"
    set_step_status(step, StepStatus.PENDING, f"resumed: {why}")
    to_run = chain.restart_from(run, step)
    event(run, RESUMED, step=step, message=f"resumed: {why}")
    changes.commit()
    with suppress(QueueUnavailable):  # logged; the watchdog finds the lost chain
        chain.publish(run, to_run)
    return 1


def _locked_waiting(run_id: uuid.UUID, name: str) -> tuple[Run | None, RunStep | None]:
    """The run and step, locked, if the step still waits (else rolled back, None)."""
    run = lock_run(run_id)
    step = next((s for s in run.steps if s.name == name), None) if run else None
    if run is None or step is None or step.status != StepStatus.WAITING:
        changes.rollback()
        return None, None
    return run, step


def _reschedule(waiting: list[Waiting], at: datetime) -> int:
    """Show the site's next probe on each waiting step (its status and page say when)."""
    moved = 0
    for item in waiting:
        if abs((item.next_attempt_at - at).total_seconds()) < 1:
            continue
        run, step = _locked_waiting(item.run_id, item.step)
        if run is None or step is None:
            continue
        step.next_attempt_at = at
        changes.noted(run)
        changes.commit()
        moved += 1
    return moved


class EngineWaitExpired(Exception):
    """A step waited RUN_TRANSIENT_DEADLINE for its engine: it fails, with the last reason."""


def gave_up(reason: object) -> EngineWaitExpired:
    deadline = _hours(current_app.config["RUN_TRANSIENT_DEADLINE"])
    return EngineWaitExpired(f"gave up after waiting {deadline} for the engine: {reason}")


def _give_up(now: datetime) -> int:
    """Fail the steps that have waited for their engine longer than RUN_TRANSIENT_DEADLINE."""
    deadline = timedelta(seconds=current_app.config["RUN_TRANSIENT_DEADLINE"])
    expired = db.session.execute(
        select(RunStep.run_id, RunStep.name, RunStep.task_id, RunStep.critical, RunStep.error)
        .join(Run, Run.id == RunStep.run_id)
        .where(
            RunStep.status == StepStatus.WAITING,
            RunStep.waiting_since < now - deadline,
            Run.status.in_(ACTIVE_RUN_STATUSES),
        )
    ).all()
    changes.rollback()
    for run_id, name, task_id, critical, error in expired:
        why = gave_up((error or {}).get("message", "it was unavailable"))
        execution.fail(str(run_id), name, task_id or "", why, critical=critical, attempt_ms=0)
        log.warning("run %s: %s %s", run_id, name, why)
    return len(expired)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
