"""An engine that stops answering: runs wait for it and go on by themselves when it is back.

Real worker, real Redis (the breaker) and PostgreSQL; the engine probe is the beat task's
function, called here when the test wants it to run (`wait_run` calls it too while a run
waits, as beat would every ENGINE_PROBE_TICK s).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from provisioner.models import Role, RunStatus, StepStatus
from provisioner.models.types import utcnow
from provisioner.orchestration import outages
from provisioner.steps import BY_NAME
from tests.helpers import (
    assert_exactly_one_of_each,
    events_of,
    metric,
    new_tenant,
    start,
    wait_run,
)
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration

V1 = "/api/v1/provisioning/tenants"
PAGE = "/api/provisioning/tenants"


def waiting(run) -> bool:
    return any(s.status == StepStatus.WAITING for s in run.steps)


def unavailable(engine) -> list:
    """This session's engine site, if its breaker is not closed (other sessions share Redis)."""
    return [s for s in outages.unavailable_sites() if s.site == engine.credentials.site_key]


def later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


def test_runs_wait_out_an_outage_and_resume_by_themselves(quiet, client, worker, sim, engine):
    cfg = quiet.config
    tenants = [new_tenant() for _ in range(5)]
    run_ids = [start(t) for t in tenants]
    for run_id in run_ids:  # in flight: each has made something already
        wait_run(run_id, until=lambda r: r.step("check_engine").status == StepStatus.COMPLETED)
    sim.add_fault(kind="error", status=503)  # every call: a proxy in front of a restarting ERPNext

    for run_id in run_ids:
        run = wait_run(run_id, timeout=90, until=waiting)
        assert run.status == RunStatus.IN_PROGRESS  # not failed: waiting
    [open_site] = unavailable(engine)
    assert open_site.status == "open"
    assert "503" in open_site.reason

    # What people see: the status (both dialects), the logs, the metrics.
    owner = make_user()
    join(owner, tenants[0], Role.OWNER)
    api = Api(client, owner)
    status = api.get(f"{V1}/{tenants[0].id}/status").json
    wait = status["waiting_for_engine"]
    step = next(s for s in status["steps"] if s["status"] == "waiting")
    assert wait["step"] == step["name"] == status["current_step"]
    assert wait["since"]
    assert wait["next_probe_at"]
    assert "503" in wait["reason"]
    assert "Gateway error" not in wait["reason"]  # the proxy's page is not shown (SECURITY.md)
    assert status["status"] == "IN_PROGRESS"
    page = api.get(f"{PAGE}/{tenants[0].id}/status").json
    assert page["waiting_for_engine"]["step"].startswith("step_")
    logs = api.get(f"{V1}/{tenants[0].id}/logs").json["events"]
    assert any(
        e["kind"] == "step_waiting" and "waiting for the engine" in e["message"] for e in logs
    )
    assert metric(client, "provisioner_steps_waiting_for_engine", step=step["name"]) >= 1
    assert metric(client, "provisioner_engine_sites_unavailable", state="open") >= 1
    assert metric(client, "provisioner_step_waits_total", step=step["name"]) >= 1

    # While it is down, probes fail and only move the next probe on; nothing fails.
    down = outages.tick(later(cfg["BREAKER_PROBE_MAX"] + 1))
    assert down.probed["down"] == 1
    assert (down.resumed, down.gave_up) == (0, 0)

    sim.clear_faults()  # ERPNext is back
    up = outages.tick(later(cfg["BREAKER_PROBE_MAX"] + 1))
    assert up.probed["up"] == 1
    assert up.resumed == cfg["BREAKER_HALF_OPEN_TRIALS"]  # a few first, not a stampede

    for run_id, tenant in zip(run_ids, tenants, strict=True):
        run = wait_run(run_id, timeout=120)
        assert run.status == RunStatus.COMPLETED, [(s.name, s.status) for s in run.steps]
        assert not events_of(run_id, kind="step_failed")
        assert events_of(run_id, kind="step_resumed")
        assert all(s.waiting_since is None for s in run.steps)
        assert_exactly_one_of_each(engine, tenant.name)
    assert unavailable(engine) == []
    assert api.get(f"{V1}/{tenants[0].id}/status").json["waiting_for_engine"] is None


def test_transient_failures_that_use_up_the_retries_wait_instead_of_failing(
    app_ctx, worker, sim, engine
):
    step = BY_NAME["create_warehouses"]
    # A deadlock now and then is not an outage (the breaker stays closed), but this many in a
    # row use up the step's retries: the step waits, then goes on with a fresh budget.
    sim.add_fault(kind="error", status=500, exc_type="QueryDeadlockError", method="POST",
                  path="^/api/resource/Warehouse$", count=step.max_retries + 2)  # fmt: skip
    tenant = new_tenant()
    run = wait_run(start(tenant), timeout=120)

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    [parked] = events_of(run.id, kind="step_waiting", step=step.name)
    assert parked.data["reason"] == "EngineConflict"
    assert len(events_of(run.id, kind="step_retrying", step=step.name)) == step.max_retries + 1
    assert unavailable(engine) == []
    assert_exactly_one_of_each(engine, tenant.name)


def test_a_step_that_waits_past_the_deadline_fails_its_run(quiet, worker, sim):
    sim.add_fault(kind="error", status=502)
    run_id = start(new_tenant())
    wait_run(run_id, timeout=90, until=waiting)

    deadline = quiet.config["RUN_TRANSIENT_DEADLINE"]
    report = outages.tick(later(deadline + 60))

    assert report.gave_up == 1
    run = wait_run(run_id)
    assert run.status == RunStatus.FAILED
    failed = run.step("check_engine")
    assert failed.status == StepStatus.FAILED
    assert failed.error["class"] == "EngineWaitExpired"
    assert failed.error["message"].startswith("gave up after waiting 24 h for the engine")
    later_steps = {s.status for s in run.steps if s.position > failed.position}
    assert later_steps == {StepStatus.NOT_REACHED, StepStatus.SKIPPED}  # skipped: demo items
