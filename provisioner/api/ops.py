"""Liveness and readiness for load balancers and the demo."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text

from provisioner.api.errors import ApiError
from provisioner.extensions import db

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The database answers (the broker is checked where it is used: publishing)."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        raise ApiError(503, "database_unavailable", "the database is unreachable") from None
    return {"status": "ready"}
