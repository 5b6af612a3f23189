"""`provisioner.webhooks.deliver`: one attempt at a webhook delivery, retried with backoff.

The delivery row says how many attempts were made and when the next is due; the task only
waits (Celery retry with a countdown) and tries again until the row says it is settled.
"""

from __future__ import annotations

from celery import shared_task

from provisioner.observability import context as log_context
from provisioner.tasks.base import AppContextTask
from provisioner.webhooks import deliveries


class NotDelivered(Exception):
    """The receiver did not take the delivery; shown in Flower as the retry's reason."""


@shared_task(
    name=deliveries.TASK,
    bind=True,
    base=AppContextTask,
    max_retries=None,  # WEBHOOK_MAX_ATTEMPTS, counted in the database, ends the retries
    acks_late=True,
    ignore_result=True,
)
def deliver(task: AppContextTask, delivery_id: str, correlation_id: str | None = None) -> str:
    with log_context.bound(correlation_id=correlation_id or task.request.id, delivery=delivery_id):
        outcome = deliveries.attempt(delivery_id)
    if outcome.retry_in is not None:
        raise task.retry(countdown=outcome.retry_in, exc=NotDelivered(outcome.detail))
    return f"{outcome.status or 'skipped'}: {outcome.detail}".rstrip(": ")
