"""The committing side of live updates: every committed run change reaches the streams.

Connected by the app factory to `signals.changes_committed`, in every process that changes
runs (API, workers, CLI): each changed tenant's new state (`changes.states`: its version and
status document, or idle) is stored and announced through `publisher.store`, once, for all
viewers in every live process; and each commit that took access away
(`signals.access_revoked`) is announced on `protocol.ACCESS_CHANNEL`, for the web processes'
status memory (`live.feed`). Live updates are best effort: without Redis nothing is
published and the pages poll. A failed publish mutes publishing for a few seconds, so an
outage costs a transition one connect timeout at most, not one per transition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from flask import current_app

from provisioner import signals
from provisioner.live.protocol import ACCESS_CHANNEL, State
from provisioner.live.publisher import publish_status, store
from provisioner.signals import Changes, LiveState

log = logging.getLogger(__name__)

_TIMEOUT = 1.0  # seconds to connect to (and hear back from) Redis
_MUTE_SECONDS = 5.0
_clients: dict[str, redis.Redis] = {}
_muted_until: dict[str, float] = {}


def connect() -> None:
    signals.changes_committed.connect(_announce)
    signals.access_revoked.connect(access_changed)


def publish(client: redis.Redis, state: LiveState) -> None:
    """Store and announce one tenant's new state: its run's status, or idle (no run left)."""
    if state.run_id is not None and state.document is not None:
        publish_status(client, state.tenant_id, state.run_id, state.version, state.document)
    else:
        idle = State(state.version, "idle", State.idle(state.tenant_id).data)
        store(client, state.tenant_id, None, idle)


def access_changed(_sender: object = None) -> None:
    """After a commit that took access away: web processes forget the grants they remember
    (`api.not_modified`; without this they would within STATUS_MEMORY_SECONDS)."""
    _best_effort(lambda client: client.publish(ACCESS_CHANNEL, b""), "access change")


def _announce(changes: Changes) -> None:
    def publish_all(client: redis.Redis) -> None:
        for state in changes.states:
            publish(client, state)

    _best_effort(publish_all, "live updates")


def _best_effort(work: Callable[[redis.Redis], object], what: str) -> None:
    client, url = _client()
    if client is None:
        return
    try:
        work(client)
    except redis.RedisError as exc:
        _muted_until[url] = time.monotonic() + _MUTE_SECONDS
        log.warning("%s not published (%s); pages fall back to polling", what, exc)


def _client() -> tuple[redis.Redis | None, str]:
    """The Redis client for live updates, or None: not Redis, or muted after a failure."""
    url = str(current_app.config.get("REDIS_URL") or "")
    if not url.startswith(("redis://", "rediss://")):
        return None, url
    if _muted_until.get(url, 0.0) > time.monotonic():
        return None, url
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=_TIMEOUT, socket_timeout=_TIMEOUT
        )
    return _clients[url], url
