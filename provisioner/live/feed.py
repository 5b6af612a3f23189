"""The Redis subscription that keeps a web process's status memory true (`api.not_modified`).

One daemon thread per process, started by the first status poll: PSUBSCRIBEs the live
frames (`protocol.CHANNEL_PATTERN`: every committed change of a run) and SUBSCRIBEs
`protocol.ACCESS_CHANNEL` (access taken away), and tells the memory what it heard. While it
is not subscribed, the memory trusts nothing; an idle subscription is pinged, so a Redis
that died without a word is noticed within seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

import redis

from provisioner.live.protocol import ACCESS_CHANNEL, CHANNEL_PATTERN, CHANNEL_PREFIX

log = logging.getLogger(__name__)
_RECONNECT_SECONDS = 1.0
_PING_SECONDS = 5.0


class Heard(Protocol):
    """What the feed tells (`api.not_modified.Memory`)."""

    def changed(self, tenant: str) -> None: ...
    def access_changed(self) -> None: ...
    def connected(self) -> None: ...
    def disconnected(self) -> None: ...


class Feed:
    """The process's one Redis subscription, in a daemon thread started on first use."""

    def __init__(self, memory: Heard, redis_url: str) -> None:
        self.redis_url, self.memory = redis_url, memory
        self._started = False
        self._start_lock = threading.Lock()

    def ensure_started(self) -> None:
        if self._started:
            return
        with self._start_lock:
            if not self._started:
                threading.Thread(target=self._run, name="status-memory-feed", daemon=True).start()
                self._started = True

    def _run(self) -> None:
        client = redis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=2,
            socket_timeout=2 * _PING_SECONDS,
            health_check_interval=_PING_SECONDS,
            client_name=f"provisioner-status-feed-{os.getpid()}",  # in CLIENT LIST
        )
        while True:
            try:
                self._listen(client)
            except (redis.RedisError, OSError) as exc:
                log.info("status polls read the database until Redis answers again (%s)", exc)
            self.memory.disconnected()
            time.sleep(_RECONNECT_SECONDS)

    def _listen(self, client: redis.Redis) -> None:
        with client.pubsub() as pubsub:
            pubsub.psubscribe(CHANNEL_PATTERN)
            pubsub.subscribe(ACCESS_CHANNEL)
            subscribed = 0
            while True:
                message = pubsub.get_message(timeout=_PING_SECONDS)
                kind = message["type"] if message else None
                if kind in ("psubscribe", "subscribe"):
                    subscribed += 1
                    if subscribed == 2:  # both confirmed: nothing is missed from now on
                        self.memory.connected()
                elif kind == "pmessage":
                    self.memory.changed(message["channel"].decode()[len(CHANNEL_PREFIX) :])
                elif kind == "message":
                    self.memory.access_changed()
