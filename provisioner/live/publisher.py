"""The one call a committing process makes: `publish_status(...)` after each transition.

Sync, plain `redis` client, no Flask: usable from the API, Celery workers and the CLI.
Call it after the transaction that changed the run has committed, with the run's new
`version` and `status_doc` (the body `GET …/status` answers); see `protocol` for what it
stores and announces. It is safe to call late, twice or out of order: an older version than
the stored one changes nothing and reaches no stream.
"""

from __future__ import annotations

from typing import Any

import redis

from provisioner.live.protocol import (
    STATE_TTL_SECONDS,
    STORE_IF_NEWER,
    State,
    compact,
    store_arguments,
)

_scripts: dict[int, Any] = {}  # id(client) -> its registered script (EVALSHA, loaded once)


def publish_status(
    redis_client: redis.Redis,
    tenant_id: object,
    run_id: object,
    version: int,
    document: Any,
    *,
    ttl_seconds: int = STATE_TTL_SECONDS,
) -> bool:
    """Store and announce the workspace's new status if `version` is newer; True if it was.

    Raises `redis.RedisError` when Redis is unreachable: the caller decides (the API and
    the workers log it and go on; streams then see the change at their next reconnect).
    """
    if version < 1:
        raise ValueError("run versions start at 1 (0 is the idle frame)")
    state = State(version, "status", compact(document))
    return store(redis_client, tenant_id, run_id, state, ttl_seconds=ttl_seconds)[0]


def store(
    redis_client: redis.Redis,
    tenant_id: object,
    run_id: object,
    state: State,
    *,
    announce: bool = True,
    ttl_seconds: int = STATE_TTL_SECONDS,
) -> tuple[bool, State]:
    """Store `state` unless a newer one is there; (stored?, the state now current)."""
    script = _scripts.get(id(redis_client))
    if script is None:
        script = _scripts[id(redis_client)] = redis_client.register_script(STORE_IF_NEWER)
    keys, args = store_arguments(
        tenant_id, run_id, state, announce=announce, ttl_seconds=ttl_seconds
    )
    reply = script(keys=keys, args=args)
    return bool(int(reply[0])), State.from_script(reply)
