"""`flask --app wsgi provisioning status|start|retry|cancel TENANT`, through Flask's CliRunner."""

from __future__ import annotations

import json

import pytest

from provisioner.extensions import db
from provisioner.models import AuditEntry, RunStatus, StepStatus
from tests.helpers import new_tenant, wait_run

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(args=["provisioning", *args])
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    return invoke


def latest_run_id(cli, tenant) -> str:
    return json.loads(cli("status", str(tenant.id), "--json"))["run_id"]


def test_start_status_and_refusals(app_ctx, cli, worker, sim):
    tenant = new_tenant()
    assert "not provisioned yet" in cli("status", tenant.slug)
    assert "has not been provisioned yet" in cli("retry", tenant.slug, ok=False)

    started = cli("start", tenant.slug, "--plan", "BASIC")
    run = wait_run(latest_run_id(cli, tenant))
    assert str(run.id) in started
    assert run.status == RunStatus.COMPLETED
    assert run.started_by.startswith("cli:")

    shown = cli("status", tenant.slug)
    assert f"run {run.id}  BASIC  COMPLETED  100%" in shown
    assert all(step.name in shown for step in run.steps)
    assert "only a pending or running run can be cancelled" in cli("cancel", tenant.slug, ok=False)
    assert "nothing to retry" in cli("retry", str(tenant.id), ok=False)
    assert "no workspace 'no-such-shop'" in cli("status", "no-such-shop", ok=False)
    assert "Invalid value for '--plan'" in cli("start", tenant.slug, "--plan", "NOPE", ok=False)
    actions = db.session.execute(
        db.select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.tenant_id == tenant.id)
    ).all()
    assert [action for action, _ in actions if action != "create"] == ["start"]
    assert all(actor.startswith("cli:") for action, actor in actions if action == "start")


def test_retry_a_failed_run_and_cancel_a_running_one(app_ctx, cli, worker, sim):
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST",
                  path="^/api/resource/Warehouse$", message="warehouse refused",
                  count=1)  # fmt: skip
    tenant = new_tenant()
    cli("start", tenant.slug)
    run = wait_run(latest_run_id(cli, tenant))
    assert run.status == RunStatus.FAILED
    assert "warehouse refused" in cli("status", tenant.slug)

    cli("retry", tenant.slug)
    run = wait_run(run.id)
    assert run.status == RunStatus.COMPLETED

    sim.add_fault(kind="latency", seconds=5, method="GET",
                  path="frappe.auth.get_logged_user$", count=1)  # fmt: skip
    cli("start", tenant.slug, "--plan", "CUSTOM", "--step", "check_engine")
    second = latest_run_id(cli, tenant)
    wait_run(second, until=lambda r: r.step("check_engine").status == StepStatus.RUNNING)
    assert "CANCELLED" in cli("cancel", tenant.slug)
    assert wait_run(second).status == RunStatus.CANCELLED
