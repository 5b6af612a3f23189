"""Steering runs against the real PostgreSQL, Redis and a real worker: races, cancel, resume."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest

from provisioner.extensions import db
from provisioner.models import Run, RunStatus, StepStatus
from tests.conftest import QUEUE
from tests.helpers import new_tenant, start, wait_run
from tests.integration.conftest import Api, make_user

pytestmark = pytest.mark.integration
V1 = "/api/v1/provisioning/tenants"


def step_of(run, name: str):
    return next(s for s in run.steps if s.name == name)


def queued_messages(app) -> int:
    """Messages waiting in the session's queue, on whichever broker (Redis or RabbitMQ)."""
    with app.extensions["celery"].connection_for_write() as conn:
        return conn.default_channel.queue_declare(queue=QUEUE, passive=True).message_count


def storm(app, calls: list[tuple[str, str]], user) -> Counter:
    """Send every (method path) call at the same moment from its own thread."""
    gate = threading.Barrier(len(calls))
    answers: list[int] = []

    def call(path: str) -> None:
        with app.app_context():
            api = Api(app.test_client(), user)
            gate.wait()
            answers.append(api.post(path, json={}).status_code)

    threads = [threading.Thread(target=call, args=(path,)) for _, path in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(answers)


@pytest.fixture
def idle_queue(app, worker_pool, redis_url):
    """No worker consumes the session's queue, and it starts empty: count what is published."""
    worker_pool.stop_all()
    app.extensions["celery"].control.purge()
    yield
    app.extensions["celery"].control.purge()


def test_hundred_simultaneous_starts_make_one_run_and_one_chain(app_ctx, idle_queue):
    tenant, admin = new_tenant(), make_user(admin=True)

    answers = storm(app_ctx, [("POST", f"{V1}/{tenant.id}/start")] * 100, admin)

    assert answers == Counter({202: 1, 409: 99})
    assert queued_messages(app_ctx) == 1  # one chain: its first task carries the rest


def test_retry_and_continue_racing_resume_once(app_ctx, worker, sim, worker_pool):
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST",
                  path="^/api/resource/Warehouse$", message="no warehouses today")  # fmt: skip
    tenant, admin = new_tenant(), make_user(admin=True)
    failed = wait_run(start(tenant))
    assert failed.status == RunStatus.FAILED
    sim.clear_faults()
    worker_pool.stop_all()
    app_ctx.extensions["celery"].control.purge()

    calls = [("POST", f"{V1}/{tenant.id}/{kind}") for kind in ("retry", "continue")] * 25
    answers = storm(app_ctx, calls, admin)

    assert answers == Counter({202: 1, 409: 49})
    assert queued_messages(app_ctx) == 1
    worker_pool.start()
    assert wait_run(failed.id).status == RunStatus.COMPLETED


def wait_until_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still runs after {timeout} s")


def test_cancel_during_a_running_step_stops_the_run(app_ctx, worker, sim):
    sim.add_fault(kind="latency", seconds=3, method="POST", path="^/api/resource/Company$",
                  count=1)  # fmt: skip
    tenant, admin = new_tenant(), Api(app_ctx.test_client(), make_user(admin=True))
    run_id = start(tenant)
    wait_run(run_id, until=lambda r: step_of(r, "create_company").status == StepStatus.RUNNING)

    running_in = step_of(db.session.get(Run, run_id), "create_company").worker
    answer = admin.post(f"{V1}/{tenant.id}/cancel", json={})

    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == RunStatus.CANCELLED
    # The next link of a chain is sent by the task before it: once the pool process that ran
    # it is gone (the revoke terminated it), nothing can follow.
    wait_until_gone(int(running_in.rpartition(":")[2]))
    run = wait_run(run_id)
    assert run.status == RunStatus.CANCELLED
    assert step_of(run, "create_company").status == StepStatus.CANCELLED
    later = [s for s in run.steps if s.position > step_of(run, "create_company").position]
    assert {s.status for s in later} == {StepStatus.NOT_REACHED, StepStatus.SKIPPED}
    assert not [c for c in sim.calls() if "/Warehouse" in c["path"]]

    resumed = admin.post(f"{V1}/{tenant.id}/continue", json={})
    assert resumed.status_code == 202, resumed.json
    assert wait_run(run_id).status == RunStatus.COMPLETED


def test_cancel_during_a_retry_wait_means_the_retry_never_fires(app_ctx, worker, sim):
    sim.add_fault(kind="error", status=429, exc_type="TooManyRequestsError", method="POST",
                  path="^/api/resource/Company$", count=1,
                  headers={"Retry-After": "4"})  # fmt: skip
    tenant, admin = new_tenant(), Api(app_ctx.test_client(), make_user(admin=True))
    run_id = start(tenant)
    wait_run(run_id, until=lambda r: step_of(r, "create_company").status == StepStatus.RETRYING)

    task_id = step_of(db.session.get(Run, run_id), "create_company").task_id
    assert admin.post(f"{V1}/{tenant.id}/cancel", json={}).status_code == 200
    # The retry's message is held by the worker until it is due, then discarded as revoked.
    worker.wait_for_log(f"Discarding revoked task: provisioner.steps.create_company[{task_id}]")

    run = wait_run(run_id)
    assert run.status == RunStatus.CANCELLED
    company_posts = [
        c for c in sim.calls() if c["method"] == "POST" and c["path"].endswith("/Company")
    ]
    assert len(company_posts) == 1  # the refused one; the retry never reached the engine
    assert step_of(run, "create_company").attempts == 1


def test_a_finished_run_cannot_be_cancelled_and_409_carries_the_state(app_ctx, worker, sim):
    tenant, admin = new_tenant(), Api(app_ctx.test_client(), make_user(admin=True))
    wait_run(start(tenant))
    answer = admin.post(f"{V1}/{tenant.id}/cancel", json={})
    assert answer.status_code == 409
    assert answer.json["error"]["details"]["status"] == RunStatus.COMPLETED
    critical = admin.post(f"{V1}/{tenant.id}/skip-step", json={"step": "create_company"})
    assert critical.status_code == 409
    assert "critical" in critical.json["error"]["message"]
