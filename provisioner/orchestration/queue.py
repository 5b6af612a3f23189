"""How many messages wait in the broker's queue (the watchdog and the metrics ask)."""

from __future__ import annotations

from provisioner.orchestration.dispatch import celery_app


def depth(queue: str | None = None) -> int | None:
    """Messages ready in the queue (default: the step tasks'); None if the broker is down.

    Messages a worker has taken but not yet acknowledged are not counted.
    """
    celery = celery_app()
    name = queue or celery.conf.task_default_queue
    with celery.connection_for_read() as conn:
        try:
            conn.ensure_connection(max_retries=1)
            return conn.default_channel.queue_declare(queue=name, passive=True).message_count
        except conn.channel_errors:
            return 0  # no such queue: nothing was ever left in it
        except (*conn.connection_errors, OSError):
            return None
