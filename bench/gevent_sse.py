"""The candidate the live process was chosen against: Flask's stream route on gunicorn with a
gevent worker (issue 12 named both). Measured by `bench/live.py`, never shipped.

As close to the live process as gevent allows: one Redis pattern subscription per worker
(one greenlet) fanned out in memory to a bounded queue per stream, the same frames (the
state hash on open, then every published state), a slow client's queue dropped when full.
No ticket check and no database: the candidate's best case. gevent comes from a venv of
the bench's own (`bench/live.py`), not from the product's requirements:

    REDIS_URL=… gunicorn -k gevent -w 1 --worker-connections 10000 bench.gevent_sse:app
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import gevent
import redis
from flask import Flask, Response
from gevent.queue import Empty, Full, Queue

from provisioner.live.protocol import CHANNEL_PATTERN, CHANNEL_PREFIX, State, state_key

app = Flask(__name__)
# Streams opening at once wait for one of 50 connections (as the live process's reads do).
_pool = redis.BlockingConnectionPool.from_url(
    os.environ["REDIS_URL"], max_connections=50, timeout=30
)
_redis = redis.Redis(connection_pool=_pool)
_viewers: dict[uuid.UUID, set[Queue[bytes]]] = {}
_listening: list[Any] = []


def _frame(state: State) -> bytes:
    return f"id: {state.version}\nevent: {state.event}\ndata: {state.data}\n\n".encode()


def _listen() -> None:
    while True:
        try:
            pubsub = _redis.pubsub()
            pubsub.psubscribe(CHANNEL_PATTERN)
            for message in pubsub.listen():
                if message["type"] != "pmessage":
                    continue
                tenant = uuid.UUID(message["channel"].decode()[len(CHANNEL_PREFIX) :])
                frame = _frame(State.from_message(message["data"]))
                for queue in list(_viewers.get(tenant, ())):
                    try:
                        queue.put_nowait(frame)
                    except Full:
                        _viewers[tenant].discard(queue)  # a slow client: dropped
        except redis.RedisError:
            gevent.sleep(0.5)


@app.get("/api/v1/provisioning/tenants/<uuid:tenant>/events")
def events(tenant: uuid.UUID) -> Response:
    if not _listening:
        _listening.append(gevent.spawn(_listen))
    reply = _redis.hmget(state_key(tenant), ["version", "event", "data"])
    state = State.from_script([1, *reply]) if reply[0] is not None else State.idle(tenant)
    queue: Queue[bytes] = Queue(maxsize=16)
    _viewers.setdefault(tenant, set()).add(queue)

    def stream() -> Iterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            yield _frame(state)
            while queue in _viewers[tenant]:
                try:
                    yield queue.get(timeout=15)
                except Empty:
                    yield b": keep-alive\n\n"
        finally:
            _viewers[tenant].discard(queue)

    return Response(stream(), mimetype="text/event-stream")


@app.get("/healthz")
def healthz() -> Any:
    return {"streams": sum(len(v) for v in _viewers.values())}
