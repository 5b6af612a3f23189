"""A per-engine-site concurrency cap: a small counting semaphore kept in Redis.

Every engine call holds one slot of its site's semaphore while it is in flight, so no more
than ENGINE_MAX_CONCURRENCY calls reach one site at once, whatever the number of workers.
A slot is a member of a sorted set scored by its lease expiry: a process killed while
holding one loses it when the lease runs out (and the whole key expires with its last
lease), so a crash never shrinks the cap for good. ENGINE_MAX_CONCURRENCY=0 turns it off.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import redis
from flask import current_app, has_app_context

from provisioner.engine.errors import EngineBusy

log = logging.getLogger(__name__)

KEY_PREFIX = "provisioner:engine-slots:"

# Drop expired leases, then take a slot if one is free. Time is Redis's own clock, so the
# leases of processes on different hosts compare. The key lives as long as its longest lease.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
if redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return 1
"""


class SlotTimeout(EngineBusy):
    """No slot of the engine site's cap came free in time; transient, the step retries."""


class Semaphore:
    """At most `limit` holders of `name` at once, across every process sharing `client`."""

    def __init__(self, client: redis.Redis, name: str, limit: int, *, lease: float = 60.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.client, self.limit, self.lease = client, limit, lease
        self.key = KEY_PREFIX + name
        self._acquire = client.register_script(_ACQUIRE)

    def try_acquire(self) -> str | None:
        """A slot's token, or None when all slots are taken."""
        token = uuid.uuid4().hex
        lease_ms = max(1, int(self.lease * 1000))
        taken = self._acquire(keys=[self.key], args=[token, self.limit, lease_ms])
        return token if taken else None

    def acquire(self, timeout: float) -> str | None:
        """Wait up to `timeout` seconds for a slot; its token, or None."""
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            token = self.try_acquire()
            if token is not None:
                return token
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(left, pause * random.uniform(0.5, 1.5)))
            pause = min(pause * 2, 0.05)

    def release(self, token: str) -> None:
        self.client.zrem(self.key, token)

    def holders(self) -> int:
        """How many leases are held now (expired ones included until the next acquire)."""
        return int(self.client.zcard(self.key))

    @contextmanager
    def hold(self, timeout: float, *, fail_open: bool = False) -> Iterator[None]:
        """Hold one slot for the block; SlotTimeout if none came free in `timeout` s.

        With `fail_open`, a Redis that cannot be reached lets the block run without a slot.
        """
        try:
            token = self.acquire(timeout)
        except redis.RedisError as exc:
            if not fail_open:
                raise
            log.warning("engine throttle unavailable, calling without a slot: %s", exc)
            yield
            return
        if token is None:
            raise SlotTimeout(f"all {self.limit} engine slots busy for {timeout:g} s")
        try:
            yield
        finally:
            try:
                self.release(token)
            except redis.RedisError:
                log.warning("could not release an engine slot; its lease will expire")


class _Clients:
    """One Redis client per (process, URL): connections are never shared across a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[int, str], redis.Redis] = {}

    def get(self, url: str) -> redis.Redis:
        key = (os.getpid(), url)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
                self._clients[key] = client
            return client


_clients = _Clients()


def redis_client(url: str) -> redis.Redis:
    """This process's client of the Redis at `url` (the engine sites' shared state)."""
    return _clients.get(url)


def slot(site_key: str, lease: float) -> AbstractContextManager[None]:
    """The cap of this engine site for one call, per the app's config (a no-op when off).

    If Redis cannot be reached the call goes ahead unthrottled: the cap protects the
    engine from bursts, it must not stop provisioning when Redis has a hiccup.
    """
    if not has_app_context():
        return nullcontext()
    cfg = current_app.config
    limit = int(cfg.get("ENGINE_MAX_CONCURRENCY") or 0)
    url = cfg.get("ENGINE_THROTTLE_REDIS_URL") or ""
    if limit <= 0 or not url:
        return nullcontext()
    semaphore = Semaphore(_clients.get(url), site_key, limit, lease=lease)
    return semaphore.hold(float(cfg.get("ENGINE_SLOT_WAIT", 60.0)), fail_open=True)
