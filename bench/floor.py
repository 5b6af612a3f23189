"""The floor of issue 12: a bare Flask + Flask-SQLAlchemy app that reads a workspace's latest
run and its nine steps in two indexed queries and answers them as JSON.

No authentication, no snapshot, no hooks: what the status route would cost if it did nothing
but read. `/ceiling/<id>` answers 304 with no database at all: the framework's own cost.
Served by gunicorn with the shipped settings (`bench/status.py`):

    DATABASE_URL=… gunicorn --config gunicorn.conf.py bench.floor:app
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)

# The columns a status shows (the snapshot column is what the floor does without).
_RUN = text(
    "SELECT id, tenant_id, plan, options, status, current_step, progress, started_by,"
    " created_at, started_at, finished_at FROM provisioning_runs"
    " WHERE tenant_id = :tenant_id ORDER BY created_at DESC LIMIT 1"
)
_STEPS = text(
    "SELECT name, position, status, critical, optional, planned, attempts, manual_attempts,"
    " next_attempt_at, started_at, finished_at, duration_ms, note, error, result"
    " FROM provisioning_steps WHERE run_id = :run_id ORDER BY position"
)


@app.get("/floor/<uuid:tenant_id>")
def status(tenant_id: Any) -> Any:
    run = db.session.execute(_RUN, {"tenant_id": tenant_id}).mappings().first()
    if run is None:
        return jsonify(error="no run"), 404
    steps = db.session.execute(_STEPS, {"run_id": run["id"]}).mappings().all()
    return jsonify({**_plain(run), "steps": [_plain(s) for s in steps]})


@app.get("/ceiling/<uuid:_tenant_id>")
def ceiling(_tenant_id: Any) -> Any:
    """gunicorn and Flask alone: a 304 with no database, no token (the framework's cost)."""
    return "", 304


def _plain(row: Any) -> dict[str, Any]:
    return {k: v if isinstance(v, int | float | bool | str | None) else str(v)
            for k, v in row.items()}  # fmt: skip
