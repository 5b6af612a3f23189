"""Which workers are alive, and which messages each one holds (kept in Redis).

A worker killed whole (main process and pool) takes the messages it had reserved but not
started with it: Redis hands them out again only after the visibility timeout (an hour),
and the database cannot tell such a step from one that waits its turn in the queue. So the
main process of every worker (`tasks.liveness`) keeps, under LIVENESS_KEY_PREFIX:

- `alive:<worker>`, refreshed every third of WORKER_LIVENESS_TTL s, expiring after it;
- `held:<worker>`, the messages it received and has not finished (`<task id>:<retries>`);
- `workers`, the set of workers that hold or held something.

A worker whose key expired is dead; `dead()` names the task ids it held that no live worker
holds, the watchdog requeues the steps and jobs still waiting on one of them, and `forget`
drops them. `<worker>` is the node name and the main process's pid, so that a worker
restarted under the same name is a new worker. Without Redis (REDIS_URL empty) nothing is
kept and a dead worker's messages come back as before (visibility timeout, lost message).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from flask import current_app

log = logging.getLogger(__name__)

TIMEOUT = 1.0  # seconds to connect to (and hear back from) Redis
# A dead worker's set outlives it this long at most (s); the watchdog forgets it long before.
HELD_TTL = 24 * 3600
_clients: dict[str, redis.Redis] = {}


@dataclass(frozen=True)
class Dead:
    """What the dead workers held: by worker (to forget), and the task ids that matter."""

    held: dict[str, set[str]] = field(default_factory=dict)
    task_ids: frozenset[str] = frozenset()
    # The task ids the live workers hold; None when that is not known (no Redis, or it
    # could not be read): then no message may be judged held by nobody.
    live: frozenset[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.held)


def client() -> redis.Redis | None:
    """The Redis of the liveness keys (REDIS_URL), or None when there is none."""
    url = str(current_app.config.get("REDIS_URL") or "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, decode_responses=True
        )
    return _clients[url]


def key(*parts: str) -> str:
    return ":".join((current_app.config["LIVENESS_KEY_PREFIX"], *parts))


def member(task_id: str, retries: int | None) -> str:
    """One delivery: a retry is a new message with the same id, so the count is part of it."""
    return f"{task_id}:{retries or 0}"


# -- the worker's side ----------------------------------------------------------------------


def beat(worker: str) -> None:
    """The worker is alive (its main process says so every third of the TTL)."""
    r = client()
    if r is None:
        return
    ttl = current_app.config["WORKER_LIVENESS_TTL"]
    with r.pipeline() as pipe:
        pipe.set(key("alive", worker), "1", px=int(ttl * 1000))
        pipe.sadd(key("workers"), worker)
        pipe.expire(key("held", worker), HELD_TTL)
        pipe.execute()


def received(worker: str, delivery: str) -> None:
    r = client()
    if r is not None:
        with r.pipeline() as pipe:
            pipe.sadd(key("held", worker), delivery)
            pipe.expire(key("held", worker), HELD_TTL)
            pipe.execute()


def released(worker: str, delivery: str) -> None:
    r = client()
    if r is not None:
        r.srem(key("held", worker), delivery)


def left(worker: str) -> None:
    """A worker that stops cleanly: the broker takes back what it had not started."""
    r = client()
    if r is not None:
        with r.pipeline() as pipe:
            pipe.delete(key("alive", worker), key("held", worker))
            pipe.srem(key("workers"), worker)
            pipe.execute()


# -- the watchdog's side --------------------------------------------------------------------


def dead() -> Dead:
    """What the workers whose liveness key expired held; nothing if Redis cannot be read."""
    r = client()
    if r is None:
        return Dead()
    try:
        workers = sorted(str(w) for w in r.smembers(key("workers")))
        with r.pipeline() as pipe:
            for worker in workers:
                pipe.exists(key("alive", worker))
                pipe.smembers(key("held", worker))
            answers = pipe.execute()
    except redis.RedisError as exc:
        log.warning("worker liveness not read (%s); dead workers are not looked for", exc)
        return Dead()
    held: dict[str, set[str]] = {}
    live: set[str] = set()
    for worker, alive, members in zip(workers, answers[::2], answers[1::2], strict=True):
        if alive:
            live |= members
        else:
            held[worker] = members
    ids = {m.rpartition(":")[0] for members in held.values() for m in members}
    live_ids = frozenset(m.rpartition(":")[0] for m in live)
    return Dead(held, frozenset(ids - live_ids), live_ids)


def forget(found: Dead) -> None:
    """Drop what the watchdog has dealt with; a worker with nothing left leaves the list."""
    r = client()
    if r is None or not found:
        return
    try:
        for worker, members in found.held.items():
            _forget(r, worker, members)
    except redis.RedisError as exc:
        log.warning("dead workers not forgotten (%s); the next sweep looks again", exc)


def _forget(r: redis.Redis, worker: str, members: Iterable[str]) -> None:
    held = key("held", worker)
    with r.pipeline() as pipe:
        if members:
            pipe.srem(held, *members)
        pipe.scard(held)
        pipe.exists(key("alive", worker))
        *_, left_over, alive = pipe.execute()
    if not left_over and not alive:
        r.srem(key("workers"), worker)
