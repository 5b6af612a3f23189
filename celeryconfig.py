"""Celery's settings for tools that read a config module (`celery --config celeryconfig`).

The app itself takes them from `provisioner.config.from_env()["CELERY"]`, the one source of
every setting; this module only re-exports them.
"""

from provisioner.config import from_env

globals().update(from_env()["CELERY"])
