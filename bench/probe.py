"""Counts the SQL statements of each task in a worker (`--include bench.probe`).

A `before_cursor_execute` listener counts per task; each task's count is added to a
Redis hash `bench:queries:<queue>` (fields `<task>` and `<task>:n`) when it ends.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready
from sqlalchemy import event

_local = threading.local()
_installed: list[bool] = []


def _install(**_: Any) -> None:
    from provisioner.celery_app import current_celery
    from provisioner.extensions import db

    if _installed:
        return
    with current_celery.flask_app.app_context():
        event.listen(db.engine, "before_cursor_execute", _count)
    _installed.append(True)


def _count(*_: Any) -> None:
    _local.count = getattr(_local, "count", 0) + 1


worker_process_init.connect(_install, weak=False)
worker_ready.connect(_install, weak=False)  # solo and threads pools have no child process


@task_prerun.connect
def _before(**_: Any) -> None:
    _local.count = 0


@task_postrun.connect
def _after(task: Any = None, **_: Any) -> None:
    conn = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    key = f"bench:queries:{os.environ['CELERY_DEFAULT_QUEUE']}"
    conn.hincrby(key, task.name, getattr(_local, "count", 0))
    conn.hincrby(key, f"{task.name}:n", 1)
    conn.expire(key, 3600)
