"""Outages of the machine's real servers in the middle of runs: Redis (the broker) stopped
for a while, PostgreSQL restarted. They run last (see tests/conftest.py): they take the
servers away from everything else for a moment."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from contextlib import suppress

import pytest
from sqlalchemy.exc import DBAPIError

from provisioner.extensions import db
from provisioner.models import RunStatus
from tests.chaos.conftest import (
    TENANTS,
    assert_engine_exact,
    settle_failures,
    wait_all_final,
)
from tests.helpers import new_tenant, start, sweeping

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.outage]
BROKER_OUTAGE = float(os.environ.get("CHAOS_BROKER_OUTAGE", "20"))
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
               "--save", "", "--appendonly", "no"]  # fmt: skip
PG_CLUSTER = sorted(os.listdir("/etc/postgresql"))[-1] if os.path.isdir("/etc/postgresql") else ""


def redis_up() -> bool:
    return subprocess.run(["redis-cli", "ping"], capture_output=True, check=False).returncode == 0


@pytest.fixture
def watchdog_quick(app_ctx):
    """The watchdog's limits shortened to the scale of the test."""
    saved = {k: app_ctx.config[k] for k in ("WATCHDOG_LOST_AFTER", "WATCHDOG_RETRY_GRACE")}
    app_ctx.config.update(WATCHDOG_LOST_AFTER=8, WATCHDOG_RETRY_GRACE=8)
    yield
    app_ctx.config.update(saved)


def test_broker_outage_in_the_middle_of_runs(app_ctx, worker, sim, engine, watchdog_quick, report):
    if not redis_up():
        pytest.skip("Redis is not running here")
    sim.add_fault(kind="latency", seconds=0.05, path="^/api/")
    tenants = [new_tenant() for _ in range(TENANTS)]
    run_ids = [start(t) for t in tenants]
    names = [t.name for t in tenants]
    time.sleep(1.5)
    subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True, check=False)
    try:
        time.sleep(BROKER_OUTAGE)
    finally:
        subprocess.run(REDIS_START, capture_output=True, check=True)
        while not redis_up():
            time.sleep(0.2)
    worker.restart(concurrency=3)  # a worker that reconnects by itself is fine too; be sure

    found = wait_all_final(run_ids, tick=sweeping())
    found, continued = settle_failures(found)

    assert [r.status for r in found] == [RunStatus.COMPLETED] * TENANTS
    assert_engine_exact(engine, names)
    report(
        outage_seconds=BROKER_OUTAGE,
        runs=Counter(r.status for r in found),
        continued_by_operator=Counter(continued),
    )


@pytest.mark.skipif(not PG_CLUSTER, reason="no local PostgreSQL cluster to restart")
def test_database_restart_in_the_middle_of_runs(
    app_ctx, worker, sim, engine, watchdog_quick, report
):
    sim.add_fault(kind="latency", seconds=0.05, path="^/api/")
    tenants = [new_tenant() for _ in range(TENANTS)]
    run_ids = [start(t) for t in tenants]
    names = [t.name for t in tenants]  # the rows detach from the session with the restart
    time.sleep(1.5)
    down = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_CLUSTER, "main", "restart"],
                   capture_output=True, check=True)  # fmt: skip
    outage = time.monotonic() - down
    with suppress(DBAPIError):
        db.session.rollback()
    db.session.remove()
    db.engine.dispose()  # this test's own connections died with the server

    found = wait_all_final(run_ids, tick=sweeping())
    found, continued = settle_failures(found)

    assert [r.status for r in found] == [RunStatus.COMPLETED] * TENANTS
    assert_engine_exact(engine, names)
    report(
        outage_seconds=round(outage, 1),
        runs=Counter(r.status for r in found),
        continued_by_operator=Counter(continued),
    )
