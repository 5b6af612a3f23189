"""The machine's real services for the tests, and what happens when one is missing.

Under CI=true a missing PostgreSQL or Redis fails the suite; elsewhere the tests that need
it are skipped with a loud reason, and the session summary says so again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")

MISSING: dict[str, str] = {}


def missing(service: str, why: str) -> None:
    """Fail (CI) or skip (elsewhere), loudly."""
    MISSING[service] = why
    message = f"*** {service} IS NOT REACHABLE ({why}); the tests that need it cannot run ***"
    if CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def check_postgres() -> None:
    import psycopg

    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        missing("PostgreSQL", str(exc).strip().splitlines()[0])


def check_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        missing("Redis", str(exc))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for this session, dropped afterwards."""
    import psycopg

    name = f"provisioner_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check_broker(url: str) -> None:
    """The Celery broker the session uses (Redis by default, RabbitMQ when asked)."""
    if url.startswith("redis"):
        check_redis()
        return
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        missing("RabbitMQ", str(exc))


def forget_breakers(engine_url: str) -> None:
    """Close the circuit breakers of every site at `engine_url` (a test starts with the
    engine available, whatever the last one left open)."""
    import redis

    from provisioner.engine.breaker import KEY_PREFIX

    client = redis.Redis.from_url(f"{REDIS_URL}/0")
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}{engine_url.rstrip('/')}#*", count=500))
    if keys:
        client.delete(*keys)
