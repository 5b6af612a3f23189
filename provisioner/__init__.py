"""Provisioner: takes a new workspace from sign-up to an open point of sale on ERPNext.

`provisioner.create_app` is the Flask app factory; `provisioner.celery` is the Celery app
that `celery -A provisioner worker|beat|flower|call` finds. Both are loaded on first use,
so that importing a leaf module (the simulator, say) does not build the application.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from provisioner.app import create_app

        return create_app
    if name == "celery":
        from provisioner.app import create_app

        celery = create_app().extensions["celery"]
        globals()["celery"] = celery
        return celery
    raise AttributeError(f"module 'provisioner' has no attribute {name!r}")
