"""The watchdog against real stuck runs: a vanished worker, a lost message, a lost retry, a
whole worker killed with messages it had reserved; its own queue behind a backlog; step
time limits; site jobs whose worker vanished."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from provisioner.extensions import db
from provisioner.models import JobStatus, Run, RunEvent, RunStatus, SiteJob, StepStatus
from provisioner.models.types import utcnow
from provisioner.orchestration import budgets, liveness, queue, watchdog
from provisioner.orchestration.transitions import job_event
from provisioner.tasks.watchdog import TASK
from tests.conftest import QUEUE
from tests.helpers import (
    assert_exactly_one_of_each,
    events_of,
    metric,
    new_tenant,
    start,
    wait_for,
    wait_run,
)
from tests.integration.site_job_helpers import job_row, kinds, register_site, wait_job

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


@pytest.fixture
def without_liveness(monkeypatch) -> None:
    """The watchdog as without worker liveness: only heartbeats and time tell it anything."""
    monkeypatch.setattr(liveness, "dead", liveness.Dead)


def held_by_workers() -> set[str]:
    """The task ids the live and dead workers of this session hold (their Redis sets)."""
    r = liveness.client()
    return {
        held.rpartition(":")[0]
        for worker in r.smembers(liveness.key("workers"))
        for held in r.smembers(liveness.key("held", worker))
    }


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
    requeues = metric(client, "provisioner_watchdog_actions_total", reason="orphaned_message")

    worker_pool.ensure_running()
    quiet.extensions["celery"].send_task(TASK)
    run = wait_run(run_id, timeout=90)

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    [requeue] = events_of(run_id, kind="watchdog_requeued")
    assert (requeue.step, requeue.data) == ("check_engine", {"reason": "orphaned_message"})
    assert_exactly_one_of_each(engine, tenant.name)
    assert metric(client, "provisioner_long_running_runs") == 0
    assert metric(client, "provisioner_watchdog_actions_total", reason="orphaned_message") == (
        requeues + 1
    )


def test_a_retry_lost_with_its_worker_is_requeued(
    quiet, redis_broker, without_liveness, worker, sim, engine
):
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
    quiet, worker_pool, lose_messages, without_liveness
):
    # Without worker liveness, only time tells that a message was lost (WATCHDOG_LOST_AFTER).
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


def test_a_message_that_no_worker_holds_is_requeued_after_seconds(
    quiet, worker_pool, lose_messages, monkeypatch
):
    # A worker died after a step's commit, before it sent the next step: nothing is queued,
    # no worker holds the message. Worker liveness tells, so it costs WATCHDOG_ORPHAN_AFTER.
    orphan_after = quiet.config["WATCHDOG_ORPHAN_AFTER"]
    worker_pool.stop_all()
    lose_messages()  # what earlier tests left in the queue
    run_id = start(new_tenant())
    assert lose_messages() == 1
    assert watchdog.sweep(after(orphan_after - 5)).requeued == {}

    assert watchdog.sweep(after(orphan_after + 1)).requeued == {"orphaned_message": 1}
    [requeue] = events_of(run_id, kind="watchdog_requeued")
    assert "no worker holds it and the queue is empty" in requeue.message
    # A message a live worker holds (reserved, or a retry it keeps) is not judged lost so soon.
    lose_messages()
    db.session.expire_all()
    task_id = db.session.get(Run, run_id).step("check_engine").task_id
    monkeypatch.setattr(liveness, "dead", lambda: liveness.Dead(live=frozenset({task_id})))
    assert watchdog.sweep(after(2 * (orphan_after + 1))).requeued == {}


def test_a_whole_worker_killed_with_reserved_steps_costs_seconds(quiet, worker_pool, sim, engine):
    # One process, four messages reserved: while the engine holds one run's company for a
    # while (20 s, within this worker's read timeout), the other runs' next steps wait in the
    # worker's hands, not in the queue. The runs start before the worker does, so that it
    # takes their first steps together and their companies queue behind the held one
    # however slow the machine is.
    worker_pool.ensure_running()  # (a pool's first start purges the queues: not after ours)
    worker_pool.stop_all()
    liveness.forget(liveness.dead())  # workers killed by earlier tests are not this one's
    sim.add_fault(kind="latency", seconds=20, method="POST", path="^/api/resource/Company$",
                  count=1)  # fmt: skip
    tenants = [new_tenant() for _ in range(3)]
    run_ids = [start(t) for t in tenants]
    worker_pool.start(concurrency=1, prefetch=4, ENGINE_READ_TIMEOUT="30")

    def reserved() -> list | None:
        db.session.expire_all()
        runs = [db.session.get(Run, run_id) for run_id in run_ids]
        held = held_by_workers()
        busy = [r for r in runs if r.step("create_company").status == StepStatus.RUNNING]
        waiting = [
            r.step("create_company")
            for r in runs
            if r.step("create_company").status == StepStatus.PENDING
            and r.step("create_company").task_id in held
        ]
        return waiting if len(busy) == 1 and len(waiting) == 2 else None

    waiting = wait_for(reserved, what="two runs' steps reserved behind a held one")
    assert all(step.attempts == 0 for step in waiting)
    worker_pool.kill_all()  # main process and pool: nothing is given back to the broker
    wait_for(lambda: liveness.dead().task_ids >= {s.task_id for s in waiting},
             what="the worker's liveness key expired")  # fmt: skip

    report = watchdog.sweep()

    assert report.requeued["dead_worker"] == 2, report.counts()
    assert report.dead_workers == 1
    assert not liveness.dead(), "the dead worker's messages are forgotten once requeued"
    worker_pool.start()
    runs = [wait_run(run_id, timeout=90) for run_id in run_ids]
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 3, [
        [(s.name, s.status, s.error) for s in r.steps] for r in runs
    ]
    dead_worker = [e for r in run_ids for e in events_of(r, kind="watchdog_requeued")
                   if e.data == {"reason": "dead_worker"}]  # fmt: skip
    assert sorted(e.run_id for e in dead_worker) == sorted(s.run_id for s in waiting)
    assert all("the worker holding its message died" in e.message for e in dead_worker)
    assert not [e for r in run_ids for e in events_of(r, kind="watchdog_requeued")
                if e.data == {"reason": "lost_message"}]  # fmt: skip
    for requeue in dead_worker:  # only the new chain ran them: the old messages were refused
        started = events_of(requeue.run_id, kind="step_started", step="create_company")
        assert started
        assert all(e.id > requeue.id for e in started)
    for tenant in tenants:
        assert_exactly_one_of_each(engine, tenant.name)


def test_the_sweep_runs_on_its_own_queue_behind_a_backlog(
    quiet, client, worker_pool, lose_messages
):
    worker_pool.stop_all()
    celery = quiet.extensions["celery"]
    backlog = 1000
    for _ in range(backlog):  # steps of a run that does not exist: each refused at once
        celery.send_task("provisioner.steps.check_engine", args=(str(uuid.uuid4()),))
    swept = metric(client, "provisioner_watchdog_sweeps_total", outcome="ran")
    celery.send_task(TASK)  # as beat sends it: to the watchdog's queue

    worker_pool.start(concurrency=1)
    wait_for(lambda: metric(client, "provisioner_watchdog_sweeps_total", outcome="ran") > swept,
             what="a sweep")  # fmt: skip
    left = queue.depth()

    assert left, "the sweep did not wait for the backlog"
    assert left > backlog / 2
    assert metric(client, "provisioner_watchdog_last_sweep_timestamp_seconds") > 0
    worker_pool.wait_for_log("watchdog sweep in")
    lose_messages()


def test_a_sweep_while_another_runs_skips(quiet, client):
    skipped = metric(client, "provisioner_watchdog_sweeps_total", outcome="skipped")
    with watchdog._sweep_lock() as held:
        assert held
        assert watchdog.sweep_once() is None
    assert metric(client, "provisioner_watchdog_sweeps_total", outcome="skipped") == skipped + 1
    assert watchdog.sweep_once() is not None  # the lock is free again


def test_a_step_over_its_soft_time_limit_is_retried_and_recorded(
    quiet, worker, sim, engine, monkeypatch
):
    # The limits travel with the messages, so the publishing process sets them: 2 s for
    # create_warehouses, whose first attempt the engine slows to 3 s (each call under the
    # read timeout: only the time limit stops it).
    step_limits = budgets.step_limits
    monkeypatch.setattr(
        budgets,
        "step_limits",
        lambda step, cfg: (
            (2.0, 32.0) if step.name == "create_warehouses" else step_limits(step, cfg)
        ),
    )
    sim.add_fault(kind="latency", seconds=1.5, method="GET",
                  path="^/api/resource/Warehouse", count=2)  # fmt: skip
    tenant = new_tenant()
    run = wait_run(start(tenant), timeout=90)

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    assert run.step("create_warehouses").attempts == 2
    [retry] = events_of(run.id, kind="step_retrying", step="create_warehouses")
    assert retry.data["reason"] == "OverTimeLimit"
    assert "not done within its time limit of 2 s" in retry.message
    assert_exactly_one_of_each(engine, tenant.name)


def running_backup(tenant, silent_for: float) -> SiteJob:
    """A backup job its worker was running, silent for `silent_for` s (no task in the queue)."""
    register_site(tenant, f"{tenant.slug}.localhost")
    job = job_row(tenant, "backup_site", JobStatus.RUNNING)
    job.attempts = 1
    job_event(job, "started", "attempt 1 on a worker that vanished")
    db.session.commit()
    db.session.execute(
        update(SiteJob)
        .where(SiteJob.id == job.id)
        .values(updated_at=utcnow() - timedelta(seconds=silent_for))
    )
    db.session.commit()
    return job


def test_a_site_job_whose_worker_vanished_is_requeued(quiet, worker, sim):
    stale_after = quiet.config["STALE_AFTER"]
    tenant = new_tenant()
    sim.new_site(f"{tenant.slug}.localhost")
    beating = running_backup(new_tenant(), silent_for=0)  # its heartbeat is fresh
    job = running_backup(tenant, silent_for=stale_after + 1)

    report = watchdog.sweep()

    assert report.jobs_requeued == {"stale_heartbeat": 1}, report.counts()
    done = wait_job(job.id)
    assert done.status == JobStatus.COMPLETED, (done.error, kinds(done))
    assert kinds(done).count("watchdog_requeued") == 1
    assert done.attempts == 2
    assert db.session.get(SiteJob, beating.id).status == JobStatus.RUNNING  # left alone


def test_a_site_job_held_by_a_dead_worker_is_requeued(quiet, monkeypatch):
    tenant = new_tenant()
    register_site(tenant, f"{tenant.slug}.localhost")
    job = job_row(tenant, "backup_site", JobStatus.PENDING)
    job_event(job, "created", "backup_site asked by tests")
    db.session.commit()
    old_task = job.task_id
    dead = liveness.Dead({"gone@host:1": {f"{old_task}:0"}}, frozenset({old_task}))
    monkeypatch.setattr(liveness, "dead", lambda: dead)

    report = watchdog.sweep()

    assert report.jobs_requeued == {"dead_worker": 1}, report.counts()
    db.session.expire_all()
    requeued = db.session.get(SiteJob, job.id)
    assert requeued.task_id != old_task
    assert "the worker holding its message died" in requeued.message
