"""Every setting, read from the environment in one place.

The defaults are those of a developer machine with PostgreSQL and Redis on localhost;
`make demo` overrides them with embedded ones (SQLite, an in-process Redis, the simulator).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/provisioner"
DEFAULT_SECRET_KEY = "dev-only-secret-change-me"


def database_url(raw: str) -> str:
    """Accept the URL forms hosting platforms hand out and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return float(env.get(name, default))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(env.get(name, default))


def from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Flask config mapping for this environment."""
    env = os.environ if env is None else env
    db_url = database_url(env.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    return {
        "SECRET_KEY": env.get("SECRET_KEY", DEFAULT_SECRET_KEY),
        # Fernet key for secrets at rest; derived from SECRET_KEY when not given.
        "ENCRYPTION_KEY": env.get("ENCRYPTION_KEY"),
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(db_url),
        "TOKEN_TTL_SECONDS": _int(env, "TOKEN_TTL_SECONDS", 3600),
        # The default engine: a shared ERPNext site that tenants without their own site use.
        "ERPNEXT_URL": env.get("ERPNEXT_URL", "http://127.0.0.1:8000"),
        "ERPNEXT_API_KEY": env.get("ERPNEXT_API_KEY", ""),
        "ERPNEXT_API_SECRET": env.get("ERPNEXT_API_SECRET", ""),
        "ERPNEXT_SITE": env.get("ERPNEXT_SITE") or None,
        "ENGINE_CONNECT_TIMEOUT": _float(env, "ENGINE_CONNECT_TIMEOUT", 3.05),
        "ENGINE_READ_TIMEOUT": _float(env, "ENGINE_READ_TIMEOUT", 30.0),
        "ENGINE_HEALTH_TTL": _float(env, "ENGINE_HEALTH_TTL", 45.0),
        # At most this many calls in flight per engine site across all workers (0 = no cap),
        # counted in Redis; a call waits up to ENGINE_SLOT_WAIT s for a slot, then retries.
        "ENGINE_MAX_CONCURRENCY": _int(env, "ENGINE_MAX_CONCURRENCY", 0),
        "ENGINE_SLOT_WAIT": _float(env, "ENGINE_SLOT_WAIT", 60.0),
        "ENGINE_THROTTLE_REDIS_URL": env.get("ENGINE_THROTTLE_REDIS_URL") or _throttle_redis(env),
        # How long a step may wait for a per-site lock (company creation, shared documents).
        "SITE_LOCK_TIMEOUT": _float(env, "SITE_LOCK_TIMEOUT", 120.0),
        "LOCK_DIR": env.get("LOCK_DIR", ""),
        # A running step beats every HEARTBEAT_INTERVAL; silent for STALE_AFTER = worker gone.
        "HEARTBEAT_INTERVAL": _float(env, "HEARTBEAT_INTERVAL", 5.0),
        "STALE_AFTER": _float(env, "STALE_AFTER", 30.0),
        # The watchdog (a beat task, every WATCHDOG_INTERVAL s): a run with nothing under way
        # and nothing happening for LOST_AFTER s lost its message; a retry more than
        # RETRY_GRACE s late lost its worker. Requeued at most MAX_REQUEUES times, then failed.
        "WATCHDOG_LOST_AFTER": _float(env, "WATCHDOG_LOST_AFTER", 300.0),
        "WATCHDOG_RETRY_GRACE": _float(env, "WATCHDOG_RETRY_GRACE", 60.0),
        "WATCHDOG_MAX_REQUEUES": _int(env, "WATCHDOG_MAX_REQUEUES", 3),
        # Active for longer than this: the long-running alert metric counts the run.
        "LONG_RUN_AFTER": _float(env, "LONG_RUN_AFTER", 1800.0),
        # Webhook deliveries: attempts, backoff (doubling from BASE up to MAX), HTTP timeout.
        "WEBHOOK_MAX_ATTEMPTS": _int(env, "WEBHOOK_MAX_ATTEMPTS", 8),
        "WEBHOOK_RETRY_BASE": _float(env, "WEBHOOK_RETRY_BASE", 10.0),
        "WEBHOOK_RETRY_MAX": _float(env, "WEBHOOK_RETRY_MAX", 3600.0),
        "WEBHOOK_TIMEOUT": _float(env, "WEBHOOK_TIMEOUT", 10.0),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        # Rate limits of mutating routes (flask-limiter syntax), kept in Redis.
        "RATE_LIMIT_PER_USER": env.get("RATE_LIMIT_PER_USER", "120/minute"),
        "RATE_LIMIT_PER_TENANT": env.get("RATE_LIMIT_PER_TENANT", "30/minute"),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or _limit_storage(env),
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "provisioner"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # If Redis is down the limits fall back to per-process counts rather than refusing.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Site lifecycle jobs: `simulator` (its admin API at ERPNEXT_URL) or `bench` (on the
        # engine host, whose workers consume BENCH_QUEUE). New sites: <slug>.<SITE_DOMAIN>.
        "SITE_BACKEND": env.get("SITE_BACKEND", "simulator"),
        "SITE_DOMAIN": env.get("SITE_DOMAIN", "localhost"),
        "BENCH_QUEUE": env.get("BENCH_QUEUE", "bench"),
        "BENCH_PATH": env.get("BENCH_PATH", "bench"),
        "BENCH_DIR": env.get("BENCH_DIR", "/home/frappe/frappe-bench"),
        "BENCH_TIMEOUT": _float(env, "BENCH_TIMEOUT", 900.0),  # per command; new-site ~85 s
        "BENCH_DB_ROOT_PASSWORD": env.get("BENCH_DB_ROOT_PASSWORD", ""),
        # Where the engine host serves its sites (chosen by Host header); else ERPNEXT_URL.
        "BENCH_SITE_URL": env.get("BENCH_SITE_URL") or None,
        **_live_settings(env),
    }


def _live_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The live process (`python -m provisioner.live`, the Procfile's `live`)."""
    return {
        # Redis for live updates: REDIS_URL, else the broker when it is Redis (as the API).
        "REDIS_URL": env.get("REDIS_URL") or _throttle_redis(env),
        "LIVE_HOST": env.get("LIVE_HOST", "0.0.0.0"),
        "LIVE_PORT": _int(env, "LIVE_PORT", 8001),
        # A stream ends after this long; the client reconnects with a fresh ticket.
        "LIVE_STREAM_SECONDS": _float(env, "LIVE_STREAM_SECONDS", 300.0),
        "LIVE_KEEPALIVE_SECONDS": _float(env, "LIVE_KEEPALIVE_SECONDS", 15.0),
        # Sent as the SSE `retry:` field: how long EventSource waits before reconnecting.
        "LIVE_RETRY_MS": _int(env, "LIVE_RETRY_MS", 2000),
        # Open streams one user may hold in one live process; one more answers 429.
        "LIVE_MAX_STREAMS_PER_USER": _int(env, "LIVE_MAX_STREAMS_PER_USER", 20),
        # A stream whose unsent output stays above LIVE_SEND_BUFFER bytes for
        # LIVE_SEND_TIMEOUT s is a slow client and is dropped (it reconnects and catches up).
        "LIVE_SEND_TIMEOUT": _float(env, "LIVE_SEND_TIMEOUT", 10.0),
        "LIVE_SEND_BUFFER": _int(env, "LIVE_SEND_BUFFER", 256 * 1024),
        # Longest wait between two attempts to resubscribe after Redis went away (s).
        "LIVE_REDIS_BACKOFF_MAX": _float(env, "LIVE_REDIS_BACKOFF_MAX", 5.0),
    }


def _limit_storage(env: Mapping[str, str]) -> str:
    """The broker's Redis when the broker is Redis; else counts stay in each process."""
    broker = env.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    return broker if broker.startswith(("redis://", "rediss://")) else "memory://"


def _throttle_redis(env: Mapping[str, str]) -> str:
    """The broker's Redis when the broker is Redis; else none (the cap is then off)."""
    broker = env.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    return broker if broker.startswith(("redis://", "rediss://")) else ""


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # The embedded demo: several processes share one file; wait for locks instead of failing.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "pool_recycle": 1800}
