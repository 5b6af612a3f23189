"""One Redis subscription per live process, fanned out in memory to every open stream.

The hub keeps, for each workspace with viewers here, its current `State` and the frame of
that state already encoded per dialect (built once per change, not once per viewer), and
writes that same bytes object to every stream. A frame older than what the hub has is
dropped. When Redis goes away the hub resubscribes by itself (exponential backoff up to
LIVE_REDIS_BACKOFF_MAX) and sends every open stream its workspace's current state again,
read from Redis, or from PostgreSQL when Redis lost it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from provisioner.live import frames
from provisioner.live.protocol import (
    CHANNEL_PATTERN,
    CHANNEL_PREFIX,
    STORE_IF_NEWER,
    State,
    state_key,
    store_arguments,
)
from provisioner.live.state import NoSnapshot, database, read_state

log = logging.getLogger(__name__)


class Stream(Protocol):
    tenant_id: uuid.UUID
    user_id: str
    dialect: str
    sent_version: int

    def send(self, chunk: bytes) -> bool:
        """Write a frame; False when the stream cannot take it (not started, or gone)."""
        ...


class Hub:
    def __init__(self, redis_url: str, database_url: str, backoff_max: float) -> None:
        # Reads wait for a free connection rather than fail when many streams open at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=32, timeout=10, socket_connect_timeout=2
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._database = database(database_url)
        self._backoff_max = backoff_max
        self._store = self._redis.register_script(STORE_IF_NEWER)
        self.streams: dict[uuid.UUID, set[Stream]] = defaultdict(set)
        self.per_user: Counter[str] = Counter()
        self._states: dict[uuid.UUID, State] = {}
        self._frames: dict[tuple[uuid.UUID, str], bytes] = {}
        self._loading: dict[uuid.UUID, asyncio.Task[State]] = {}  # one read for many viewers
        self.subscribed = False

    @property
    def open_streams(self) -> int:
        return sum(self.per_user.values())

    def add(self, stream: Stream) -> None:
        self.streams[stream.tenant_id].add(stream)
        self.per_user[stream.user_id] += 1

    def remove(self, stream: Stream) -> None:
        viewers = self.streams.get(stream.tenant_id)
        if viewers is None or stream not in viewers:
            return
        viewers.discard(stream)
        self.per_user[stream.user_id] -= 1
        if self.per_user[stream.user_id] <= 0:
            del self.per_user[stream.user_id]
        if not viewers:
            del self.streams[stream.tenant_id]
            self._states.pop(stream.tenant_id, None)
            for key in [k for k in self._frames if k[0] == stream.tenant_id]:
                del self._frames[key]

    def frame(self, tenant_id: uuid.UUID, dialect: str) -> bytes:
        """The current state's frame in `dialect`, encoded once per change."""
        key = (tenant_id, dialect)
        if key not in self._frames:
            self._frames[key] = frames.encode(self._states[tenant_id], dialect)
        return self._frames[key]

    def current(self, tenant_id: uuid.UUID) -> State | None:
        return self._states.get(tenant_id)

    async def load(self, tenant_id: uuid.UUID) -> State:
        """The workspace's state: in memory, else Redis, else PostgreSQL (stored back)."""
        state = self._states.get(tenant_id)
        if state is None:
            loading = self._loading.get(tenant_id)
            if loading is None:
                loading = self._loading[tenant_id] = asyncio.create_task(self._fetch(tenant_id))
                loading.add_done_callback(lambda _t: self._loading.pop(tenant_id, None))
            state = await asyncio.shield(loading)
            self._apply(tenant_id, state, fan_out=False)
        return self._states.get(tenant_id, state)

    async def _fetch(self, tenant_id: uuid.UUID) -> State:
        try:
            reply = await self._redis.hmget(state_key(tenant_id), ["version", "event", "data"])
            if reply[0] is not None:
                return State.from_script([1, *reply])
        except RedisError as exc:
            log.warning("live: Redis read failed (%s); reading PostgreSQL", exc)
        state = await asyncio.to_thread(read_state, self._database, tenant_id)
        try:
            keys, args = store_arguments(tenant_id, None, state, announce=False)
            return State.from_script(await self._store(keys=keys, args=args))
        except RedisError:
            return state

    def _apply(self, tenant_id: uuid.UUID, state: State, *, fan_out: bool) -> None:
        """Take `state` if it is newer than the one held, and send it to the viewers."""
        held = self._states.get(tenant_id)
        if held is not None and held.version >= state.version:
            return
        self._states[tenant_id] = state
        for key in [k for k in self._frames if k[0] == tenant_id]:
            del self._frames[key]
        if fan_out:
            self.send_current(tenant_id, lambda s: s.sent_version < state.version)

    def send_current(self, tenant_id: uuid.UUID, which: Callable[[Stream], bool]) -> None:
        state = self._states[tenant_id]
        for stream in list(self.streams.get(tenant_id, ())):
            if which(stream) and stream.send(self.frame(tenant_id, stream.dialect)):
                stream.sent_version = state.version

    def on_message(self, channel: bytes, payload: bytes) -> None:
        try:
            tenant_id = uuid.UUID(channel.decode()[len(CHANNEL_PREFIX) :])
            state = State.from_message(payload)
        except ValueError:
            log.warning("live: ignored a malformed message on %r", channel)
            return
        if tenant_id in self.streams:
            self._apply(tenant_id, state, fan_out=True)

    async def run(self) -> None:
        """Subscribe, listen, and after any Redis failure subscribe again and resync."""
        delay = 0.1
        first = True
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(CHANNEL_PATTERN)
                self.subscribed = True
                delay = 0.1
                if not first:
                    await self._resync()
                first = False
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        self.on_message(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                log.warning("live: Redis subscription lost (%s); again in %.1f s", exc, delay)
            finally:
                self.subscribed = False
                await _quietly_close(pubsub)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _resync(self) -> None:
        """Every open stream gets its workspace's current state again."""
        for tenant_id in list(self.streams):
            try:
                state = await self._fetch(tenant_id)
            except (SQLAlchemyError, NoSnapshot) as exc:  # keep what is held; sent again below
                log.warning("live: no fresh state for %s (%s)", tenant_id, exc)
                state = self._states[tenant_id]
            self._states.pop(tenant_id, None)
            self._apply(tenant_id, state, fan_out=False)
            if tenant_id in self.streams:
                self.send_current(tenant_id, lambda _s: True)

    def keepalive(self) -> None:
        for viewers in list(self.streams.values()):
            for stream in list(viewers):
                stream.send(frames.KEEPALIVE)


async def _quietly_close(pubsub: aioredis.client.PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()
