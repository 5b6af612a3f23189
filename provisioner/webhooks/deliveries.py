"""Deliveries of a run's final state to its workspace's webhooks, and each attempt.

Listens to `signals.changes_committing` (connected by the app factory, `connect()`): for
every run the transaction finished, one delivery per webhook is written in that same
transaction, just before it commits (so they describe the state that is committed), and
handed to Celery only after it commits: a transaction that rolls back sends nothing. If
that hand-over fails, the watchdog hands over the deliveries whose attempt is overdue
(`requeue_overdue`). Other events of a workspace (`workspace.drifted`, written by
`orchestration.verifications` with the verification's outcome) go through `add_deliveries`
and `enqueue` the same way.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from celery import Celery
from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import select

from provisioner import signals
from provisioner.extensions import db
from provisioner.models import DeliveryStatus, Run, Verification, Webhook, WebhookDelivery
from provisioner.models.status import FINAL_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.observability import context as log_context
from provisioner.security import crypto, urls
from provisioner.signals import Changes
from provisioner.webhooks import signing

log = logging.getLogger(__name__)

TASK = "provisioner.webhooks.deliver"
DRIFTED = "workspace.drifted"  # a verification found documents missing or changed
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


@dataclass(frozen=True)
class Outcome:
    status: DeliveryStatus | None  # None: there was nothing (left) to deliver
    detail: str = ""
    retry_in: float | None = None  # seconds until the next attempt, when there is one


def connect() -> None:
    """Write and send the deliveries of every run a committed transaction finished."""
    signals.changes_committing.connect(_write_deliveries)


def _write_deliveries(changes: Changes) -> None:
    ids: list[str] = []
    for run in changes.finished:
        if run.status in FINAL_RUN_STATUSES:  # it may have been resumed since
            ids.extend(_add_deliveries(run))
    if ids:
        changes.after_commit(lambda: enqueue(ids))


def _add_deliveries(run: Run) -> list[str]:
    kind = f"run.{run.status.lower()}"
    return add_deliveries(
        run.tenant_id, kind, lambda delivery_id, now: payload(run, delivery_id, kind, now), run.id
    )


def add_deliveries(
    tenant_id: uuid.UUID,
    kind: str,
    make_payload: Callable[[uuid.UUID, datetime], dict[str, Any]],
    run_id: uuid.UUID | None = None,
) -> list[str]:
    """One delivery of an event per webhook of the tenant, in the current transaction; the
    caller hands the ids to `enqueue` once it has committed."""
    webhooks = db.session.execute(select(Webhook.id).where(Webhook.tenant_id == tenant_id))
    now = utcnow()
    ids = []
    for webhook_id in webhooks.scalars():
        delivery_id = uuid.uuid4()
        db.session.add(
            WebhookDelivery(
                id=delivery_id,
                webhook_id=webhook_id,
                tenant_id=tenant_id,
                run_id=run_id,
                event=kind,
                payload=make_payload(delivery_id, now),
                status=DeliveryStatus.PENDING,
                attempts=0,
                attempt_log=[],
                next_attempt_at=now,
                created_at=now,
            )
        )
        ids.append(str(delivery_id))
    return ids


def drifted_payload(
    verification: Verification, slug: str, delivery_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """What a receiver of `workspace.drifted` gets: the documents that drifted, in plain
    words (no expected or actual values, nothing of the engine's address or credentials)."""
    drifted = [
        {key: check[key] for key in ("step", "doctype", "name", "state", "message")}
        for check in verification.checks or []
        if check["state"] in ("missing", "changed")
    ]
    return {
        "id": str(delivery_id),
        "type": DRIFTED,
        "created_at": now.isoformat(),
        "tenant": {"id": str(verification.tenant_id), "slug": slug},
        "verification": {
            "id": str(verification.id),
            "status": str(verification.status),
            "checked_at": verification.checked_at.isoformat() if verification.checked_at else None,
            "drifted": drifted,
        },
    }


def payload(run: Run, delivery_id: uuid.UUID, kind: str, now: datetime) -> dict[str, Any]:
    """What a receiver gets: the run's outcome, its steps, and the errors in plain words."""
    return {
        "id": str(delivery_id),
        "type": kind,
        "created_at": now.isoformat(),
        "tenant": {"id": str(run.tenant_id), "slug": run.tenant.slug},
        "run": {
            "id": str(run.id),
            "plan": run.plan,
            "status": str(run.status),
            "progress": run.progress,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "steps": [{"name": s.name, "status": str(s.status)} for s in run.steps],
            "errors": [
                {"step": s.name, "message": (s.error or {}).get("message", "")}
                for s in run.steps
                if s.status == "failed"
            ],
        },
    }


def enqueue(delivery_ids: list[str]) -> None:
    """Hand deliveries to Celery; on a broker outage they wait for the watchdog."""
    celery: Celery = current_app.extensions["celery"]
    correlation_id = log_context.correlation_id()
    try:
        for delivery_id in delivery_ids:
            celery.signature(
                TASK, args=(delivery_id,), kwargs={"correlation_id": correlation_id}
            ).apply_async(retry=True, retry_policy=_PUBLISH_RETRY)
    except (OperationalError, OSError) as exc:
        log.warning("webhook deliveries not enqueued (the watchdog will): %s", exc)


def requeue_overdue(now: datetime) -> int:
    """Enqueue again the pending deliveries whose attempt is overdue (their message was lost)."""
    grace = timedelta(seconds=current_app.config["WATCHDOG_RETRY_GRACE"])
    overdue = list(
        db.session.execute(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at < now - grace,
            )
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    for delivery in overdue:
        delivery.next_attempt_at = now  # not again before another grace period
    ids = [str(d.id) for d in overdue]
    db.session.commit()
    if ids:
        enqueue(ids)
    return len(ids)


def attempt(delivery_id: str) -> Outcome:
    """Make one attempt at a pending delivery and record it."""
    delivery = db.session.get(WebhookDelivery, uuid.UUID(delivery_id))
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        db.session.rollback()
        return Outcome(None, "nothing to deliver")
    webhook = db.session.get(Webhook, delivery.webhook_id)
    if webhook is None:  # removed meanwhile; its deliveries go with it
        db.session.rollback()
        return Outcome(None, "nothing to deliver")
    url, secret = webhook.url, crypto.decrypt(webhook.secret_enc)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "X-Provisioner-Event": delivery.event,
        "X-Provisioner-Delivery": delivery_id,
    }
    db.session.rollback()  # no transaction stays open while the receiver answers
    started = time.perf_counter()
    status_code, error = _post(url, secret, body, headers)
    ms = round((time.perf_counter() - started) * 1000, 1)
    return _record(delivery_id, status_code, error, ms)


def _post(
    url: str, secret: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None]:
    """POST the signed body; the status code, and what went wrong if it was no 2xx."""
    headers = {
        **headers,
        "Content-Type": "application/json",
        "User-Agent": "provisioner-webhooks/1",
        signing.HEADER: signing.signature(secret, body, int(time.time())),
    }
    timeout = (3.05, current_app.config["WEBHOOK_TIMEOUT"])
    try:
        with _session(urls.guard(current_app.config)) as session:
            response = session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
    except urls.DestinationRefused as exc:
        return None, f"not sent: {exc}"
    except requests.RequestException as exc:
        # Not str(exc): it quotes the whole URL, and webhook URLs may hold tokens.
        return None, f"{type(exc).__name__} reaching {urlsplit(url).netloc}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _session(guard: urls.Guard) -> requests.Session:
    """A session whose connections go only where the outbound policy permits, checked at
    connection time (a DNS answer that changed since the URL was added changes nothing)."""
    session = requests.Session()
    session.trust_env = False  # no proxy setting bypasses the guard
    adapter = urls.GuardedAdapter(guard, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _record(delivery_id: str, status_code: int | None, error: str | None, ms: float) -> Outcome:
    delivery = db.session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == uuid.UUID(delivery_id))
        .with_for_update()
    ).scalar_one_or_none()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        db.session.rollback()  # deleted, or another attempt settled it meanwhile
        return Outcome(None, "settled elsewhere")
    now = utcnow()
    delivery.attempts += 1
    delivery.attempt_log = [
        *delivery.attempt_log,
        {
            "n": delivery.attempts,
            "at": now.isoformat(),
            "status_code": status_code,
            "error": error,
            "ms": ms,
        },
    ]
    delivery.last_status_code, delivery.last_error = status_code, error
    outcome, n = _next(delivery, error, now), delivery.attempts
    db.session.commit()
    log.info("webhook delivery attempt %d: %s, %s", n, error or status_code, outcome.status)
    return outcome


def _next(delivery: WebhookDelivery, error: str | None, now: datetime) -> Outcome:
    cfg = current_app.config
    if error is None or delivery.attempts >= cfg["WEBHOOK_MAX_ATTEMPTS"]:
        delivery.status = DeliveryStatus.DELIVERED if error is None else DeliveryStatus.FAILED
        delivery.finished_at, delivery.next_attempt_at = now, None
        return Outcome(delivery.status, error or "")
    delay = backoff(delivery.attempts, cfg["WEBHOOK_RETRY_BASE"], cfg["WEBHOOK_RETRY_MAX"])
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    return Outcome(DeliveryStatus.PENDING, error, retry_in=delay)


def backoff(attempts: int, base: float, cap: float) -> float:
    """Doubling waits (base, 2 base, 4 base …) up to `cap`, each shortened by up to 20 %."""
    return min(cap, base * 2 ** (attempts - 1)) * random.uniform(0.8, 1.0)
