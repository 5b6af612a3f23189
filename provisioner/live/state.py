"""The live process's one SQL read: a workspace's latest frame, when Redis has none.

Used on a stream's first connect when Redis has no state for the workspace (expired, or
lost in a Redis restart); the result is stored back in Redis (`publisher.store`, never
over a newer version) so the next stream, in any live process, needs no database. It runs
in a worker thread through SQLAlchemy, so it reads PostgreSQL and the demo's SQLite alike.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, create_engine, select

from provisioner.config import engine_options
from provisioner.live.protocol import State, compact
from provisioner.models import Run


class NoSnapshot(Exception):
    """The latest run was written before runs kept their status document (migration 0005);
    its page polls `…/status` once, which writes it."""


def database(url: str) -> Engine:
    """A small pool: the live process reads only when Redis has no state for a workspace."""
    return create_engine(url, **{**engine_options(url), "pool_size": 2, "max_overflow": 2})


def read_state(engine: Engine, tenant_id: uuid.UUID) -> State:
    """The latest run's status frame, or the idle frame of a workspace without runs."""
    latest = (
        select(Run.version, Run.status_doc)
        .where(Run.tenant_id == tenant_id)
        .order_by(Run.created_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(latest).first()
    if row is None:
        return State.idle(tenant_id)
    if row.status_doc is None:
        raise NoSnapshot(f"the latest run of {tenant_id} has no status snapshot yet")
    return State(int(row.version), "status", compact(row.status_doc))
