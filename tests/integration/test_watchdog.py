"""The watchdog against real stuck runs: a vanished worker, a lost message, a lost retry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from provisioner.extensions import db
from provisioner.models import Run, RunEvent, RunStatus, StepStatus
from provisioner.models.types import utcnow
from provisioner.orchestration import watchdog
from provisioner.tasks.watchdog import TASK
from tests.conftest import QUEUE
from tests.helpers import (
    assert_exactly_one_of_each,
    events_of,
    metric,
    new_tenant,
    start,
    wait_run,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def lose_messages(app) -> Callable[[], int]:
    """The broker losing what waits in the test queue (Redis or RabbitMQ): how many it lost."""
    celery = app.extensions["celery"]

    def lose() -> int:
        with celery.connection_for_write() as conn:
            return conn.default_channel.queue_purge(QUEUE) or 0

    return lose


@pytest.fixture
def redis_broker(app) -> None:
    if not app.extensions["celery"].conf.broker_url.startswith("redis"):
        pytest.skip(
            "RabbitMQ returns a dead worker's unacknowledged messages to the queue at once: "
            "there is no lost retry for the watchdog to find"
        )


def after(seconds: float):
    """A moment `seconds` from now: the watchdog judges as if that much time had passed."""
    return utcnow() + timedelta(seconds=seconds)


def step_is(name: str, status: str):
    return lambda run: run.step(name).status == status


def test_a_step_whose_worker_vanished_is_taken_over(quiet, worker, sim, engine):
    cfg = quiet.config
    sim.add_fault(kind="latency", seconds=3, method="POST", path="^/api/resource/Company$",
                  count=1)  # fmt: skip
    tenant = new_tenant()
    run_id = start(tenant)
    wait_run(run_id, until=step_is("create_company", StepStatus.RUNNING))
    worker.kill_all()

    assert watchdog.sweep().requeued == {}  # the heartbeat is fresh: maybe only slow
    report = watchdog.sweep(after(cfg["STALE_AFTER"] + 1))

    assert report.requeued == {"stale_heartbeat": 1}
    [requeue] = events_of(run_id, kind="watchdog_requeued")
    assert (requeue.step, requeue.data) == ("create_company", {"reason": "stale_heartbeat"})
    assert "no heartbeat" in requeue.message
    # No worker yet: the new message waits in the queue, so later sweeps leave the run be
    # (they used to requeue it again at every sweep and fail it after the limit).
    for _ in range(cfg["WATCHDOG_MAX_REQUEUES"] + 1):
        later = watchdog.sweep(after(cfg["STALE_AFTER"] + 1))
        assert (later.requeued, later.failed) == ({}, {})
    worker.start()
    run = wait_run(run_id, timeout=90)
    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    assert run.step("create_company").attempts >= 2  # the killed one, then the new chain's
    assert events_of(run_id, kind="step_taken_over", step="create_company")
    assert_exactly_one_of_each(engine, tenant.name)


def test_a_lost_chain_is_requeued_by_the_beat_task_on_a_worker(
    quiet, client, worker_pool, lose_messages, sim, engine
):
    cfg = quiet.config
    worker_pool.stop_all()
    tenant = new_tenant()
    run_id = start(tenant)
    assert lose_messages() == 1  # the broker lost the chain's only message
    # Stuck: the metrics show it, and it is "older" than the alert's limit.
    stuck_since = utcnow() - timedelta(seconds=cfg["LONG_RUN_AFTER"] + 60)
    db.session.execute(
        update(Run).where(Run.id == run_id).values(created_at=stuck_since, queued_at=stuck_since)
    )
    db.session.execute(
        update(RunEvent).where(RunEvent.run_id == run_id).values(created_at=stuck_since)
    )
    db.session.commit()
    assert metric(client, "provisioner_long_running_runs") == 1
    assert metric(client, "provisioner_oldest_pending_run_age_seconds") > cfg["LONG_RUN_AFTER"]
    requeues = metric(client, "provisioner_watchdog_actions_total", reason="lost_message")

    worker_pool.ensure_running()
    quiet.extensions["celery"].send_task(TASK)
    run = wait_run(run_id, timeout=90)

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    [requeue] = events_of(run_id, kind="watchdog_requeued")
    assert (requeue.step, requeue.data) == ("check_engine", {"reason": "lost_message"})
    assert_exactly_one_of_each(engine, tenant.name)
    assert metric(client, "provisioner_long_running_runs") == 0
    assert metric(client, "provisioner_watchdog_actions_total", reason="lost_message") == (
        requeues + 1
    )


def test_a_retry_lost_with_its_worker_is_requeued(quiet, redis_broker, worker, sim, engine):
    cfg = quiet.config
    # Rate limited: the retry waits 60 s on the worker (unacknowledged), which then dies.
    sim.add_fault(kind="error", status=429, headers={"Retry-After": "60"}, method="POST",
                  path="^/api/resource/Warehouse$", count=1)  # fmt: skip
    tenant = new_tenant()
    run_id = start(tenant)
    run = wait_run(run_id, until=step_is("create_warehouses", StepStatus.RETRYING))
    worker.kill_all()

    due = run.step("create_warehouses").next_attempt_at
    assert watchdog.sweep(due).requeued == {}
    report = watchdog.sweep(due + timedelta(seconds=cfg["WATCHDOG_RETRY_GRACE"] + 1))

    assert report.requeued == {"overdue_retry": 1}
    worker.start()
    run = wait_run(run_id, timeout=90)
    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    assert [e.step for e in events_of(run_id, kind="watchdog_requeued")] == ["create_warehouses"]
    assert_exactly_one_of_each(engine, tenant.name)


def test_a_run_that_keeps_losing_its_message_is_failed_with_the_reason(
    quiet, worker_pool, lose_messages
):
    limit, lost_after = quiet.config["WATCHDOG_MAX_REQUEUES"], quiet.config["WATCHDOG_LOST_AFTER"]
    worker_pool.stop_all()
    run_id = start(new_tenant())
    nothing_yet = watchdog.sweep()
    assert (nothing_yet.requeued, nothing_yet.failed) == ({}, {})

    for n in range(1, limit + 1):
        lose_messages()
        assert watchdog.sweep(after(n * (lost_after + 1))).requeued == {"lost_message": 1}
        # Its message is in the queue again: late, not lost, so it is left alone.
        assert watchdog.sweep(after(n * (lost_after + 1) + lost_after + 1)).requeued == {}
    lose_messages()
    report = watchdog.sweep(after((limit + 1) * (lost_after + 1)))

    assert report.failed == {"lost_message": 1}
    run = wait_run(run_id)
    assert run.status == RunStatus.FAILED
    assert {s.status for s in run.steps if s.planned} == {StepStatus.NOT_REACHED}
    [gave_up] = events_of(run_id, kind="watchdog_failed")
    assert gave_up.message.startswith(f"the watchdog gave up after {limit} requeues")
    assert "its message was lost" in run.step("check_engine").note
    assert len(events_of(run_id, kind="watchdog_requeued")) == limit
    assert events_of(run_id)[-1].kind == "run_failed"
