"""`provisioner.engine.probe`: the beat task that probes unavailable engine sites and resumes
the steps waiting for them (every ENGINE_PROBE_TICK s; the work is `orchestration.outages`)."""

from __future__ import annotations

from celery import shared_task

from provisioner.observability import context as log_context
from provisioner.orchestration import outages
from provisioner.tasks.base import AppContextTask

TASK = "provisioner.engine.probe"


@shared_task(name=TASK, bind=True, base=AppContextTask, ignore_result=True)
def probe(task: AppContextTask) -> dict[str, int]:
    with log_context.bound(correlation_id=task.request.id):
        return outages.tick().counts()
