"""The live process's one SQL read: a workspace's latest frame, when Redis has none.

Used on a stream's first connect when Redis has no state for the workspace (expired, or
lost in a Redis restart); the result is stored back in Redis (`publisher.store`, never
over a newer version) so the next stream, in any live process, needs no database.
"""

from __future__ import annotations

import uuid

import psycopg

from provisioner.live.protocol import State, compact

LATEST_RUN = (
    "SELECT version, status_doc FROM provisioning_runs"
    " WHERE tenant_id = %s ORDER BY created_at DESC LIMIT 1"
)


def libpq_url(database_url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg://` URL as libpq takes it."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


async def read_state(conn: psycopg.AsyncConnection, tenant_id: uuid.UUID) -> State:
    """The latest run's status frame, or the idle frame of a workspace without runs."""
    async with conn.cursor() as cur:
        await cur.execute(LATEST_RUN, (tenant_id,))
        row = await cur.fetchone()
    if row is None:
        return State.idle(tenant_id)
    version, document = row
    return State(int(version), "status", compact(document))
