"""Shared fixtures: the ERPNext simulator, a real PostgreSQL database, the app, real workers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import services
from tests.workers import WorkerPool

SIM_KEY, SIM_SECRET = "test-key", "test-secret"
QUEUE = f"provisioner-test-{uuid.uuid4().hex[:8]}"

# Settings for every app and worker of this session. They are environment variables because
# the Celery worker runs in another process; they are set before anything reads them.
TEST_ENV = {
    "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
    "CELERY_BROKER_URL": f"{services.REDIS_URL}/0",
    "CELERY_RESULT_BACKEND": f"{services.REDIS_URL}/1",
    # Live page updates always use Redis pub/sub, whichever broker (make test-rabbitmq).
    "REDIS_URL": f"{services.REDIS_URL}/0",
    # Status polls read the database, but in the memory's own tests (test_status_memory.py):
    # other tests take access away by changing rows, not through the CLI or API that tell.
    "STATUS_MEMORY_SECONDS": "0",
    "CELERY_DEFAULT_QUEUE": QUEUE,
    "WATCHDOG_QUEUE": f"{QUEUE}-watchdog",
    # A whole worker killed: what it held is requeued once its liveness key is 3 s old.
    "WORKER_LIVENESS_TTL": "3",
    "HEARTBEAT_INTERVAL": "0.5",
    "STALE_AFTER": "4",
    "ENGINE_READ_TIMEOUT": "2",
    "ENGINE_HEALTH_TTL": "0",
    "STEP_RETRY_BACKOFF_MAX": "4",
    # A message a killed worker held goes back to the queue after this long (production: 1 h,
    # shortened by the watchdog); longer than any step or retry wait of the tests.
    "BROKER_VISIBILITY_TIMEOUT": "10",
    "BROKER_RESTORE_INTERVAL": "2",
    "BROKER_RESTORE_THROTTLE": "1",
    "SITE_LOCK_TIMEOUT": "30",
    # An unavailable engine site is probed again within a second or two.
    "BREAKER_PROBE_INTERVAL": "0.5",
    "BREAKER_PROBE_MAX": "2",
    # Webhook retries in a second or two (0.2 s, 0.4 s, 0.8 s), then the delivery fails.
    "WEBHOOK_RETRY_BASE": "0.2",
    "WEBHOOK_MAX_ATTEMPTS": "4",
    "TOKEN_TTL_SECONDS": "3600",
    # Races and storms below must meet the database's rules, not the rate limits; the rate
    # limit tests lower these on the app. Counters live in Redis under a per-session prefix.
    "RATE_LIMIT_PER_USER": "100000/minute",
    "RATE_LIMIT_PER_TENANT": "100000/minute",
    "LOGIN_FAILURES_PER_ACCOUNT": "100000/minute",
    "LOGIN_FAILURES_PER_ADDRESS": "100000/minute",
    "RATELIMIT_KEY_PREFIX": f"{QUEUE}-limits",
    # The simulator and the tests' webhook receivers listen on 127.0.0.1, which outbound
    # calls may not reach by default; this allows that one address (and not 127.0.0.2 …,
    # which the SSRF tests use as the "internal service").
    "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, value in TEST_ENV.items():
        os.environ.setdefault(name, value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Outage scenarios stop the machine's servers for a while: run them last."""
    items.sort(key=lambda item: item.get_closest_marker("outage") is not None)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if services.MISSING:
        terminalreporter.section("MISSING SERVICES", sep="!", red=True, bold=True)
        for service, why in services.MISSING.items():
            terminalreporter.write_line(f"{service} was not reachable: {why}", red=True)
        terminalreporter.write_line("Tests that need these services were skipped.", red=True)


@pytest.fixture(scope="session")
def simulator_server():
    from provisioner.simulator import SimulatorServer, create_simulator

    app = create_simulator(api_key=SIM_KEY, api_secret=SIM_SECRET, latency="zero")
    server = SimulatorServer(app, host="127.0.0.1", port=0).start()
    server.sim = app.extensions["erpnext_simulator"]
    os.environ["ERPNEXT_URL"] = server.url
    os.environ["ERPNEXT_API_KEY"] = SIM_KEY
    os.environ["ERPNEXT_API_SECRET"] = SIM_SECRET
    yield server
    server.stop()


@pytest.fixture
def sim(simulator_server):
    """The simulator, back at its initial state (a site whose setup wizard has run)."""
    simulator_server.sim.reset()
    services.forget_breakers(simulator_server.url)
    yield simulator_server.sim
    simulator_server.sim.clear_faults()


@pytest.fixture
def engine(simulator_server, sim):
    """An engine client signed in to the simulator."""
    from provisioner.engine import EngineClient, EngineCredentials

    creds = EngineCredentials(simulator_server.url, SIM_KEY, SIM_SECRET)
    return EngineClient(creds, connect_timeout=1, read_timeout=1)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    services.check_postgres()
    with services.scratch_database() as url:
        os.environ["DATABASE_URL"] = url
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    services.check_redis()
    return services.REDIS_URL


@pytest.fixture(scope="session")
def app(database_url, redis_url, simulator_server):
    """The Flask app on the session's PostgreSQL database, migrated with Alembic."""
    from flask_migrate import upgrade

    services.check_broker(os.environ["CELERY_BROKER_URL"])
    from provisioner import create_app

    application = create_app({"TESTING": True})
    with application.app_context():
        upgrade()
    return application


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app
        from provisioner.extensions import db

        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_process(app, tmp_path_factory):
    """The live process (`python -m provisioner.live`) on the session's database and Redis."""
    from tests.live import LiveProcess

    process = LiveProcess(tmp_path_factory.mktemp("live") / "live.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def worker_pool(app, tmp_path_factory) -> Iterator[WorkerPool]:
    pool = WorkerPool(app, None, Path(tmp_path_factory.mktemp("workers")))
    yield pool
    pool.stop_all()


@pytest.fixture
def worker(worker_pool) -> WorkerPool:
    """A real `celery worker` subprocess (prefork, 2 processes) consuming this session's
    queues (steps and watchdog)."""
    worker_pool.ensure_running()
    return worker_pool
