"""`provisioner.watchdog.sweep`: the beat task that sets stuck runs going again (or fails them).

Scheduled every WATCHDOG_INTERVAL seconds (celeryconfig.beat_schedule); the work and its
rules are in `orchestration.watchdog`.
"""

from __future__ import annotations

from celery import shared_task

from provisioner.observability import context as log_context
from provisioner.orchestration import watchdog
from provisioner.tasks.base import AppContextTask

TASK = "provisioner.watchdog.sweep"


@shared_task(name=TASK, bind=True, base=AppContextTask, ignore_result=True)
def sweep(task: AppContextTask) -> dict[str, int]:
    with log_context.bound(correlation_id=task.request.id):
        return watchdog.sweep().counts()
