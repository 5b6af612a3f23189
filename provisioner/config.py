"""Every setting, read from the environment in one place: `from_env()`.

The Flask config holds them all, the Celery settings under the `CELERY` key (Flask's
`celery_init_app` pattern), so that `create_app(overrides)` can change any of them and no
module reads the environment by itself. The defaults are those of a developer machine with
PostgreSQL and Redis on localhost; `make demo` overrides them with embedded ones (SQLite,
an in-process Redis, the simulator).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kombu import Exchange, Queue

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/provisioner"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "provisioner"


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


def _bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Flask config mapping for this environment."""
    env = os.environ if env is None else env
    db_url = database_url(env.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    broker = env.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    return {
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(db_url),
        "TOKEN_TTL_SECONDS": _int(env, "TOKEN_TTL_SECONDS", 3600),
        # The default engine: a shared ERPNext site that tenants without their own site use.
        "ERPNEXT_URL": env.get("ERPNEXT_URL", "http://127.0.0.1:8000"),
        "ERPNEXT_API_KEY": env.get("ERPNEXT_API_KEY", ""),
        "ERPNEXT_API_SECRET": env.get("ERPNEXT_API_SECRET", ""),
        "ERPNEXT_SITE": env.get("ERPNEXT_SITE") or None,
        "ENGINE_CONNECT_TIMEOUT": _float(env, "ENGINE_CONNECT_TIMEOUT", 3.05),
        "ENGINE_READ_TIMEOUT": _float(env, "ENGINE_READ_TIMEOUT", 30.0),
        "ENGINE_HEALTH_TTL": _float(env, "ENGINE_HEALTH_TTL", 45.0),
        # Creating a workspace asks the engine's health first; no answer in this long (s):
        # the engine counts as offline and the workspace waits for a start.
        "ENGINE_PROBE_TIMEOUT": _float(env, "ENGINE_PROBE_TIMEOUT", 3.0),
        # At most this many calls in flight per engine site across all workers (0 = no cap),
        # counted in Redis; a call waits up to ENGINE_SLOT_WAIT s for a slot, then retries.
        "ENGINE_MAX_CONCURRENCY": _int(env, "ENGINE_MAX_CONCURRENCY", 0),
        "ENGINE_SLOT_WAIT": _float(env, "ENGINE_SLOT_WAIT", 60.0),
        # The engine sites' shared state (this cap, the circuit breakers): this Redis, else
        # REDIS_URL, else the broker when it is Redis.
        "ENGINE_THROTTLE_REDIS_URL": env.get("ENGINE_THROTTLE_REDIS_URL")
        or env.get("REDIS_URL")
        or _redis_or(broker, ""),
        # The engine sites' circuit breakers (engine/breaker.py; state in the Redis above):
        # BREAKER_FAILURES outage-like failures in a row within BREAKER_WINDOW s make a site
        # unavailable (0 = no breaker); its steps wait, parked, while a probe asks it every
        # BREAKER_PROBE_INTERVAL s, backing off to BREAKER_PROBE_MAX s; once it answers,
        # BREAKER_HALF_OPEN_TRIALS steps try it (for up to BREAKER_HALF_OPEN_TIMEOUT s).
        "BREAKER_FAILURES": _int(env, "BREAKER_FAILURES", 5),
        "BREAKER_WINDOW": _float(env, "BREAKER_WINDOW", 120.0),
        "BREAKER_PROBE_INTERVAL": _float(env, "BREAKER_PROBE_INTERVAL", 5.0),
        "BREAKER_PROBE_MAX": _float(env, "BREAKER_PROBE_MAX", 30.0),
        "BREAKER_HALF_OPEN_TRIALS": _int(env, "BREAKER_HALF_OPEN_TRIALS", 3),
        "BREAKER_HALF_OPEN_TIMEOUT": _float(env, "BREAKER_HALF_OPEN_TIMEOUT", 60.0),
        # A step kept from its engine by transient causes (an outage, retries used up) waits
        # for it this long (s) before its run fails.
        "RUN_TRANSIENT_DEADLINE": _float(env, "RUN_TRANSIENT_DEADLINE", 86400.0),
        # How long a step may wait for a per-site lock (company creation, shared documents).
        "SITE_LOCK_TIMEOUT": _float(env, "SITE_LOCK_TIMEOUT", 120.0),
        "LOCK_DIR": env.get("LOCK_DIR", ""),
        # A running step beats every HEARTBEAT_INTERVAL; silent for STALE_AFTER = worker gone.
        "HEARTBEAT_INTERVAL": _float(env, "HEARTBEAT_INTERVAL", 5.0),
        "STALE_AFTER": _float(env, "STALE_AFTER", 30.0),
        # Cap of a step's (and a site job's) retry wait: exponential backoff with full jitter.
        "STEP_RETRY_BACKOFF_MAX": _float(env, "STEP_RETRY_BACKOFF_MAX", 60.0),
        # The watchdog (a beat task, every WATCHDOG_INTERVAL s): a run with nothing under way
        # and nothing happening for LOST_AFTER s lost its message; a retry more than
        # RETRY_GRACE s late lost its worker. Requeued at most MAX_REQUEUES times, then failed.
        "WATCHDOG_LOST_AFTER": _float(env, "WATCHDOG_LOST_AFTER", 300.0),
        # ... or this long, when worker liveness shows that no worker holds the message
        # (a worker died between a step's commit and the publish of the next step).
        "WATCHDOG_ORPHAN_AFTER": _float(env, "WATCHDOG_ORPHAN_AFTER", 30.0),
        "WATCHDOG_RETRY_GRACE": _float(env, "WATCHDOG_RETRY_GRACE", 60.0),
        "WATCHDOG_MAX_REQUEUES": _int(env, "WATCHDOG_MAX_REQUEUES", 3),
        # A sweep holds a Redis lock this long at most (a second sweep meanwhile skips), and
        # is stopped (soft time limit) after it.
        "WATCHDOG_SWEEP_LIMIT": _float(env, "WATCHDOG_SWEEP_LIMIT", 120.0),
        # A worker's main process keeps a key alive in Redis (TTL WORKER_LIVENESS_TTL s,
        # refreshed every third of it) and the ids of the messages it holds in a set; the
        # watchdog requeues what a worker whose key expired held (REDIS_URL; keys under
        # LIVENESS_KEY_PREFIX, so that deployments sharing a Redis keep apart).
        "WORKER_LIVENESS_TTL": _float(env, "WORKER_LIVENESS_TTL", 20.0),
        "LIVENESS_KEY_PREFIX": env.get("LIVENESS_KEY_PREFIX")
        or f"provisioner:{env.get('CELERY_DEFAULT_QUEUE', DEFAULT_QUEUE)}",
        # Active for longer than this: the long-running alert metric counts the run.
        "LONG_RUN_AFTER": _float(env, "LONG_RUN_AFTER", 1800.0),
        # Webhook deliveries: attempts, backoff (doubling from BASE up to MAX), HTTP timeout.
        "WEBHOOK_MAX_ATTEMPTS": _int(env, "WEBHOOK_MAX_ATTEMPTS", 8),
        "WEBHOOK_RETRY_BASE": _float(env, "WEBHOOK_RETRY_BASE", 10.0),
        "WEBHOOK_RETRY_MAX": _float(env, "WEBHOOK_RETRY_MAX", 3600.0),
        "WEBHOOK_TIMEOUT": _float(env, "WEBHOOK_TIMEOUT", 10.0),
        # Verification of provisioned workspaces: each one every VERIFY_INTERVAL s (0 = not on
        # a schedule), started by a beat tick every VERIFY_TICK s, at most VERIFY_PER_SITE at
        # once per engine site. A verification has VERIFY_TIME_LIMIT s (soft; hard: +30); one
        # still pending or running VERIFY_LOST_AFTER s after it was asked for is failed as
        # lost. VERIFY_AUTO_REPAIR: a drifted verification starts a repair by itself.
        "VERIFY_INTERVAL": _float(env, "VERIFY_INTERVAL", 86400.0),
        "VERIFY_PER_SITE": _int(env, "VERIFY_PER_SITE", 10),
        "VERIFY_TIME_LIMIT": _float(env, "VERIFY_TIME_LIMIT", 300.0),
        "VERIFY_LOST_AFTER": _float(env, "VERIFY_LOST_AFTER", 3600.0),
        "VERIFY_AUTO_REPAIR": _bool(env, "VERIFY_AUTO_REPAIR"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        # Site lifecycle jobs: `simulator` (its admin API at ERPNEXT_URL) or `bench` (on the
        # engine host, whose workers consume BENCH_QUEUE). New sites: <slug>.<SITE_DOMAIN>.
        "SITE_BACKEND": env.get("SITE_BACKEND", "simulator"),
        "SITE_DOMAIN": env.get("SITE_DOMAIN", "localhost"),
        "BENCH_QUEUE": env.get("BENCH_QUEUE", "bench"),
        "BENCH_PATH": env.get("BENCH_PATH", "bench"),
        "BENCH_DIR": env.get("BENCH_DIR", "/home/frappe/frappe-bench"),
        "BENCH_TIMEOUT": _float(env, "BENCH_TIMEOUT", 900.0),  # per command; new-site ~85 s
        "BENCH_DB_ROOT_PASSWORD": env.get("BENCH_DB_ROOT_PASSWORD", ""),
        # The MariaDB superuser bench signs in as (root often has socket auth only), and
        # extra `bench new-site` flags, e.g. --mariadb-user-host-login-scope=%.
        "BENCH_DB_ROOT_USERNAME": env.get("BENCH_DB_ROOT_USERNAME", ""),
        "BENCH_NEW_SITE_FLAGS": env.get("BENCH_NEW_SITE_FLAGS", ""),
        # Where the engine host serves its sites (chosen by Host header); else ERPNEXT_URL.
        "BENCH_SITE_URL": env.get("BENCH_SITE_URL") or None,
        **_live_settings(env, broker),
        **security_settings(env, broker),
        "CELERY": celery_settings(env, broker),
    }


def _live_settings(env: Mapping[str, str], broker: str) -> dict[str, Any]:
    """The live process (`python -m provisioner.live`, the Procfile's `live`)."""
    return {
        # Redis for live updates: REDIS_URL, else the broker when it is Redis.
        "REDIS_URL": env.get("REDIS_URL") or _redis_or(broker, ""),
        "LIVE_HOST": env.get("LIVE_HOST", "0.0.0.0"),
        # Where pages open the stream (its origin): empty when a reverse proxy sends the
        # `/events` paths of the API's origin to the live process (production).
        "LIVE_PUBLIC_URL": env.get("LIVE_PUBLIC_URL", "").rstrip("/"),
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
        # A client that has not sent its whole request within this time is cut off (s).
        "LIVE_REQUEST_TIMEOUT": _float(env, "LIVE_REQUEST_TIMEOUT", 10.0),
        # Longest wait between two attempts to resubscribe after Redis went away (s).
        "LIVE_REDIS_BACKOFF_MAX": _float(env, "LIVE_REDIS_BACKOFF_MAX", 5.0),
        # A status poll whose ETag and access the database confirmed within this many
        # seconds is answered 304 from the web process's memory, kept true by its Redis
        # subscription (`api.not_modified`); 0: every poll reads the database.
        "STATUS_MEMORY_SECONDS": _float(env, "STATUS_MEMORY_SECONDS", 5.0),
    }


def security_settings(env: Mapping[str, str], broker: str) -> dict[str, Any]:
    """Secrets, limits and outbound-call policy (docs/SECURITY.md); checked at start-up by
    `security.startup.check`."""
    return {
        # Required (no default): signs access tokens. At least 32 characters.
        "SECRET_KEY": env.get("SECRET_KEY", ""),
        # Fernet keys for secrets at rest, comma-separated, the newest first: it encrypts,
        # all of them decrypt. Empty: one key derived from SECRET_KEY.
        "ENCRYPTION_KEY": env.get("ENCRYPTION_KEY", ""),
        # Request bodies larger than this (bytes) are refused with 413 before being read.
        "MAX_CONTENT_LENGTH": _int(env, "MAX_CONTENT_LENGTH", 1024 * 1024),
        # Proxies in front of the app whose X-Forwarded-For/-Proto are believed (0: none).
        "PROXY_FIX_HOPS": _int(env, "PROXY_FIX_HOPS", 0),
        # Rate limits (`limits` syntax), counted after the caller is known: mutating calls
        # per user and per workspace; failed logins per account and per client address.
        "RATE_LIMIT_PER_USER": env.get("RATE_LIMIT_PER_USER", "120/minute"),
        "RATE_LIMIT_PER_TENANT": env.get("RATE_LIMIT_PER_TENANT", "30/minute"),
        "LOGIN_FAILURES_PER_ACCOUNT": env.get("LOGIN_FAILURES_PER_ACCOUNT", "10/15 minutes"),
        "LOGIN_FAILURES_PER_ADDRESS": env.get("LOGIN_FAILURES_PER_ADDRESS", "30/15 minutes"),
        # Bulk continues (POST /api/v1/provisioning/runs/continue) per platform admin, on top
        # of their mutating calls: each may continue up to 1,000 runs.
        "BULK_CONTINUE_RATE_LIMIT": env.get("BULK_CONTINUE_RATE_LIMIT", "6/minute"),
        # Where the counters live; if it is down they fall back to per-process counts.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or _redis_or(broker, "memory://"),
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "provisioner"),
        # Engines workspace owners may pick (host or host:port, `*.domain` for a domain);
        # the default engine's host (ERPNEXT_URL, BENCH_SITE_URL) is always one of them.
        "ENGINE_ALLOWED_HOSTS": _list(env, "ENGINE_ALLOWED_HOSTS"),
        # Networks (CIDR) that engine and webhook calls may reach although they are not
        # public (loopback, private, link-local …). Empty: public addresses only.
        "OUTBOUND_ALLOWED_NETWORKS": _list(env, "OUTBOUND_ALLOWED_NETWORKS"),
    }


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def celery_settings(env: Mapping[str, str], broker: str) -> dict[str, Any]:
    """Celery's own settings (lower-case names, as `celery.conf` takes them)."""
    # Every 15 s by default: with WORKER_LIVENESS_TTL 20 s, what a dead worker held is back
    # in work within 60 s.
    watchdog_interval = _float(env, "WATCHDOG_INTERVAL", 15.0)
    verify_tick = _float(env, "VERIFY_TICK", 60.0)
    probe_tick = _float(env, "ENGINE_PROBE_TICK", 5.0)
    default_queue = env.get("CELERY_DEFAULT_QUEUE", DEFAULT_QUEUE)
    watchdog_queue = env.get("WATCHDOG_QUEUE", "watchdog")
    return {
        "broker_url": broker,
        "result_backend": env.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1"),
        "task_default_queue": default_queue,
        # A worker started without -Q consumes both: the steps' queue and the watchdog's own,
        # where no backlog of steps delays a sweep. (Declared as Celery declares a missing
        # queue: an exchange of the queue's name, routing key the name.)
        "task_queues": tuple(
            Queue(name, Exchange(name), routing_key=name)
            for name in (default_queue, watchdog_queue)
        ),
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        # A worker killed in the middle of a step loses nothing: the message is acknowledged
        # only after the task ends, goes back to the queue if the worker process dies, and
        # each worker process reserves one message at a time.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Redis redelivers a message not acknowledged within this time. It must be well above
        # the longest step (the setup wizard, ~14 s on a real site, 180 s allowed) plus the
        # longest retry wait (retries wait on the worker, unacknowledged, up to
        # STEP_RETRY_BACKOFF_MAX). A worker sweeps for such messages about every
        # interval x throttle seconds. What a dead worker held comes back sooner: the
        # watchdog requeues it once the worker's liveness key expired.
        "broker_transport_options": {
            "visibility_timeout": _int(env, "BROKER_VISIBILITY_TIMEOUT", 3600),
            "unacked_restore_interval": _int(env, "BROKER_RESTORE_INTERVAL", 10),
            "unacked_restore_throttle": _int(env, "BROKER_RESTORE_THROTTLE", 10),
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 4,
        # Flower renders task events: sent, started, retried (with the reason), succeeded…
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "result_expires": 24 * 3600,
        "worker_hijack_root_logger": False,
        # Site jobs of the bench backend go to BENCH_QUEUE, which only workers on the engine
        # host consume (`celery -A provisioner worker -Q bench`); the sweep to its own queue.
        "task_routes": (
            "provisioner.tasks.site_jobs.route",
            {
                "provisioner.watchdog.sweep": {"queue": watchdog_queue},
                "provisioner.engine.probe": {"queue": watchdog_queue},
            },
        ),
        # Celery beat (`celery -A provisioner beat`, one per deployment) runs the watchdog.
        # Its sweeps never expire: one that waited runs late (a sweep already running makes
        # it skip, see orchestration.watchdog.sweep_once).
        "beat_schedule": {
            "watchdog": {"task": "provisioner.watchdog.sweep", "schedule": watchdog_interval},
            # Probes the engine sites that are unavailable and resumes their waiting steps (on
            # the watchdog's queue too: no backlog of steps delays it).
            "engine-probe": {
                "task": "provisioner.engine.probe",
                "schedule": probe_tick,
                "options": {"expires": probe_tick},
            },
            # Starts the verifications that are due (a trickle per engine site), and fails
            # those that were lost.
            "verify-schedule": {
                "task": "provisioner.verify.schedule",
                "schedule": verify_tick,
                "options": {"expires": verify_tick},
            },
        },
    }


def _redis_or(broker: str, otherwise: str) -> str:
    """The broker's URL when the broker is Redis; else `otherwise`."""
    return broker if broker.startswith(("redis://", "rediss://")) else otherwise


READS_BIND = "reads"


def binds(url: str) -> dict[str, Any]:
    """Flask-SQLAlchemy's extra engines: `reads`, the status read's (`api/status.py`), on the
    same database in autocommit and without a pre-ping: a read needs no BEGIN and ROLLBACK,
    and a connection that the database dropped costs that read one retry, not every read a
    ping."""
    options = {k: v for k, v in engine_options(url).items() if k != "pool_pre_ping"}
    return {READS_BIND: {"url": url, **options, "isolation_level": "AUTOCOMMIT"}}


def engine_options(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for the database URL (the app's and the live process's)."""
    if url.startswith("sqlite"):
        # The embedded demo: several processes share one file; wait for locks instead of failing.
        return {
            "connect_args": {"timeout": 30, "check_same_thread": False},
            "hide_parameters": True,
        }
    # hide_parameters: a failed statement's error (and so the log) never shows its values.
    return {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 10,
        "pool_recycle": 1800,
        "hide_parameters": True,
    }
