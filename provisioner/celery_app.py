"""The Celery app, configured from `app.config["CELERY"]` and bound to the Flask app.

This is the `celery_init_app` pattern of Flask's documentation: every task runs inside
the Flask app context, so tasks use the same config, database session and logging as
the web side.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery import current_app as current_celery
from celery.signals import worker_process_init
from flask import Flask

from provisioner.tasks.base import AppContextTask


def celery_init_app(app: Flask) -> Celery:
    celery = Celery(app.import_name, task_cls=AppContextTask)
    celery.config_from_object(app.config["CELERY"])
    celery.flask_app = app
    celery.set_default()
    app.extensions["celery"] = celery
    # Importing the task modules registers their shared tasks on this app.
    import provisioner.tasks.engine_probe
    import provisioner.tasks.liveness
    import provisioner.tasks.site_jobs
    import provisioner.tasks.step_task
    import provisioner.tasks.verification
    import provisioner.tasks.watchdog
    import provisioner.tasks.webhooks  # noqa: F401

    return celery


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    """A forked pool process must not reuse the parent's database connections."""
    from provisioner.extensions import db

    with current_celery.flask_app.app_context():
        db.engine.dispose(close=False)
