"""Parallel tenants on one engine site, and a worker killed with SIGKILL in the middle of a step."""

from __future__ import annotations

import threading
import time

import pytest

from provisioner.models import RunStatus, StepStatus
from tests.helpers import (
    WALK_IN,
    assert_exactly_one_of_each,
    events_of,
    new_tenant,
    start,
    sweeping,
    wait_run,
)

pytestmark = pytest.mark.integration


def start_together(app, tenants) -> list:
    """Start one run per tenant from as many threads, released at the same moment."""
    gate = threading.Barrier(len(tenants))
    run_ids: list = [None] * len(tenants)

    def go(i: int, tenant_id) -> None:
        with app.app_context():
            from provisioner.extensions import db
            from provisioner.models import Tenant

            tenant = db.session.get(Tenant, tenant_id)
            gate.wait()
            run_ids[i] = start(tenant)

    threads = [threading.Thread(target=go, args=(i, t.id)) for i, t in enumerate(tenants)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run_ids


def test_ten_tenants_at_once_on_one_site(app_ctx, worker, sim, engine):
    worker.restart(concurrency=5)  # several steps of several runs at the same time
    tenants = [new_tenant() for _ in range(10)]

    run_ids = start_together(app_ctx, tenants)
    runs = [wait_run(run_id, timeout=180) for run_id in run_ids]

    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 10, [
        [(s.name, s.status, s.error) for s in r.steps if s.status != "completed"] for r in runs
    ]
    for tenant in tenants:
        assert_exactly_one_of_each(engine, tenant.name)
    assert engine.count("Customer", [["customer_name", "like", f"{WALK_IN}%"]]) == 1
    abbreviations = {r.meta["abbr"] for r in runs}
    assert len(abbreviations) == 10  # every company got its own abbreviation


def test_worker_killed_in_the_middle_of_a_step(app_ctx, worker, sim, engine):
    # The company takes 3 s to build: long enough to kill the worker while it waits.
    sim.add_fault(kind="latency", seconds=3, method="POST", path="^/api/resource/Company$",
                  count=1)  # fmt: skip
    tenant = new_tenant()
    run_id = start(tenant)

    def company_running(run) -> bool:
        step = next(s for s in run.steps if s.name == "create_company")
        return step.status == StepStatus.RUNNING

    wait_run(run_id, until=company_running)
    time.sleep(0.5)  # the POST is now in flight
    worker.kill_all()
    worker.start()
    # Taken over by the broker's redelivery (Redis: after the visibility timeout, RabbitMQ:
    # at once) or by the watchdog's requeue of the stale step, beat's sweep meanwhile: Redis
    # restores nothing while a worker killed holding its restore lock (kombu's
    # `unacked_mutex`, 5 min, shared by every user of that Redis) is not yet expired.
    run = wait_run(run_id, timeout=120, tick=sweeping())

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    company = next(s for s in run.steps if s.name == "create_company")
    assert company.attempts == 2
    # Whether the killed attempt's POST reached the engine before the second attempt looked
    # depends on the broker (Redis redelivers after a timeout, RabbitMQ at once): either way
    # there is exactly one company.
    assert events_of(run_id, kind="step_taken_over", step="create_company")
    assert_exactly_one_of_each(engine, tenant.name)
