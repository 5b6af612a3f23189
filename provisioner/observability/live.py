"""Live status changes through Redis pub/sub, one channel per workspace.

Listens to `signals.changes_committed` (connected by the app factory, `connect()`): every
run a transaction changed is announced once it has committed, so whoever reads the
database on a message sees the committed state. Any process publishes (web, workers, CLI)
and any web process subscribes, so it works across gunicorn and Celery workers on many
machines.

Redis is `REDIS_URL`, else the Celery broker when that is Redis. Live updates are best
effort: without Redis nothing is published, subscribing raises `Unavailable`, and the
workspace page polls instead. A publish that fails mutes publishing for a few seconds,
so an outage costs a transition one connect timeout at most, not one per transition.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import redis
from flask import current_app

from provisioner import signals
from provisioner.signals import Changes

if TYPE_CHECKING:
    from redis.client import PubSub

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "provisioner:live:tenant:"
_TIMEOUT = 1.0  # seconds to connect to (and hear back from) Redis
_MUTE_SECONDS = 5.0
_clients: dict[str, redis.Redis] = {}
_muted_until: dict[str, float] = {}


class Unavailable(Exception):
    """Live updates cannot be had now (no Redis configured, or Redis unreachable)."""


def connect() -> None:
    """Announce every run change once its transaction has committed."""
    signals.changes_committed.connect(_announce)


def channel(tenant_id: object) -> str:
    return f"{CHANNEL_PREFIX}{tenant_id}"


def _announce(changes: Changes) -> None:
    publish({str(s.tenant_id): str(s.run_id) for s in changes.states})


def publish(changes: dict[str, str]) -> None:
    """Tell each workspace's subscribers that its run changed; never raises."""
    client, url = _client()
    if client is None:
        return
    try:
        for tenant_id, run_id in changes.items():
            message = json.dumps({"tenant_id": tenant_id, "run_id": run_id})
            client.publish(channel(tenant_id), message)
    except redis.RedisError as exc:
        _muted_until[url] = time.monotonic() + _MUTE_SECONDS
        log.warning("live updates not published (%s); pages fall back to polling", exc)


class Subscription:
    """A workspace's channel, subscribed."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    def wait(self, timeout: float) -> bool:
        """Block until a change is announced (True) or `timeout` seconds pass (False).

        A burst of changes counts as one: the reader fetches the state once for all.
        """
        try:
            if self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout) is None:
                return False
            while self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0):
                pass
        except redis.RedisError as exc:
            raise Unavailable(str(exc)) from None
        return True

    def close(self) -> None:
        self._pubsub.close()


def subscribe(tenant_id: object) -> Subscription:
    """Subscribe to a workspace's changes; raises `Unavailable` without a working Redis."""
    client, _ = _client()
    if client is None:
        raise Unavailable("live updates need Redis (REDIS_URL or a Redis broker)")
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(channel(tenant_id))
        if pubsub.get_message(timeout=_TIMEOUT) is None:  # the subscription's confirmation
            raise Unavailable("Redis did not confirm the subscription")
    except (redis.RedisError, Unavailable) as exc:
        pubsub.close()
        raise Unavailable(str(exc)) from None
    return Subscription(pubsub)


def _client() -> tuple[redis.Redis | None, str]:
    """The Redis client for live updates, or None: not Redis, or muted after a failure."""
    url = current_app.config.get("REDIS_URL") or ""
    if not url.startswith(("redis://", "rediss://")):
        return None, url
    if _muted_until.get(url, 0.0) > time.monotonic():
        return None, url
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=_TIMEOUT, socket_timeout=_TIMEOUT
        )
    return _clients[url], url
