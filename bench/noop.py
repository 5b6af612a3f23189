"""The floor of a chain hop: a no-op task (`--include bench.noop` loads it into a worker).

Same app, broker, queue and worker settings as the step tasks; the last link of a bare
chain pushes the time it ran to a Redis list, so the driver can time the whole chain.
"""

from __future__ import annotations

import os
import time

import redis
from celery import shared_task


@shared_task(name="bench.noop", ignore_result=True, acks_late=True)
def noop(position: int, done_key: str | None = None) -> int:
    """Do nothing (the last link also reports when it ran)."""
    if done_key:
        conn = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
        conn.rpush(done_key, time.time())
        conn.expire(done_key, 3600)
    return position
