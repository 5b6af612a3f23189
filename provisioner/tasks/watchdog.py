"""`provisioner.watchdog.sweep`: the beat task that sets stuck runs going again (or fails them).

Scheduled every WATCHDOG_INTERVAL seconds (config: beat_schedule) on the watchdog's own
queue (WATCHDOG_QUEUE), which every worker started without -Q consumes besides the steps'
one; stopped after WATCHDOG_SWEEP_LIMIT s. The work and its rules are in
`orchestration.watchdog`.
"""

from __future__ import annotations

from celery import shared_task

from provisioner.observability import context as log_context
from provisioner.orchestration import watchdog
from provisioner.tasks.base import AppContextTask

TASK = "provisioner.watchdog.sweep"


class SweepTask(AppContextTask):
    @property
    def soft_time_limit(self) -> float:
        return float(self.app.flask_app.config["WATCHDOG_SWEEP_LIMIT"])


@shared_task(name=TASK, bind=True, base=SweepTask, ignore_result=True)
def sweep(task: SweepTask) -> dict[str, int]:
    with log_context.bound(correlation_id=task.request.id):
        report = watchdog.sweep_once()
        return report.counts() if report else {"skipped": 1}
