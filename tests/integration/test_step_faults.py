"""Every step meets engine faults through the real chain: retried, idempotent, or failed well."""

from __future__ import annotations

import pytest

from provisioner.models import RunStatus, StepStatus
from provisioner.steps import BY_NAME, STEP_NAMES
from tests.helpers import (
    assert_exactly_one_of_each,
    events_of,
    new_tenant,
    start,
    wait_run,
)

pytestmark = pytest.mark.integration

# One engine call that only this step makes: (method, path pattern).
CALL_OF_STEP = {
    "check_engine": ("GET", "frappe.auth.get_logged_user$"),
    "create_company": ("POST", "^/api/resource/Company$"),
    "import_chart_of_accounts": ("GET", "frappe.client.get_count$"),
    "create_warehouses": ("POST", "^/api/resource/Warehouse$"),
    "configure_settings": ("PUT", "^/api/resource/Selling Settings/"),
    "create_demo_items": ("POST", "^/api/resource/Item$"),
    "create_walk_in_customer": ("POST", "^/api/resource/Customer$"),
    "create_pos_profile": ("POST", "^/api/resource/POS Profile$"),
    "open_pos_session": ("POST", "^/api/resource/POS Opening Entry$"),
}
# Writes whose answer can be lost after the engine committed them.
WRITES = [
    ("POST", "^/api/resource/Company$"),
    ("POST", "^/api/resource/Warehouse$"),
    ("PUT", "^/api/resource/Selling Settings/"),
    ("PUT", "^/api/resource/Stock Settings/"),
    ("POST", "^/api/resource/Item$"),
    ("POST", "^/api/resource/Customer$"),
    ("PUT", "^/api/resource/Mode of Payment/"),
    ("POST", "^/api/resource/POS Profile$"),
    ("POST", "^/api/resource/POS Opening Entry$"),
]


def test_two_503s_then_success_in_every_step(app_ctx, worker, sim, engine):
    for method, path in CALL_OF_STEP.values():
        sim.add_fault(kind="error", status=503, exc_type="SessionStopped", method=method,
                      path=path, count=2)  # fmt: skip
    tenant = new_tenant()
    run = wait_run(start(tenant, include_demo_data=True), timeout=120)

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    for step in run.steps:
        assert (step.status, step.attempts) == (StepStatus.COMPLETED, 3), step.name
        retries = events_of(run.id, kind="step_retrying", step=step.name)
        assert len(retries) == 2, step.name
        assert all(e.data["reason"] == "EngineBusy" for e in retries)
        assert "retry in" in retries[0].message
    assert_exactly_one_of_each(engine, tenant.name)


def test_answers_lost_after_commit_leave_exactly_one_of_each(app_ctx, worker, sim, engine):
    for method, path in WRITES:
        sim.add_fault(kind="commit_then_drop", method=method, path=path, count=1)
    tenant = new_tenant()
    run = wait_run(start(tenant, include_demo_data=True), timeout=120)

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    assert sum(c["fault"] == "commit_then_drop" for c in sim.calls()) == len(WRITES)
    assert_exactly_one_of_each(engine, tenant.name)
    demo_items = engine.count("Item", [["item_code", "like", f"{run.meta['abbr']}-%"]])
    assert demo_items == len(run.meta["demo_items"]) == 4


@pytest.mark.parametrize("step_name", STEP_NAMES)
def test_a_validation_error_fails_the_step_with_the_engine_message(app_ctx, worker, sim, step_name):
    method, path = CALL_OF_STEP[step_name]
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method=method, path=path,
                  message=f"<b>{step_name}</b> refused by the engine")  # fmt: skip
    run = wait_run(start(new_tenant(), include_demo_data=True))

    failed = next(s for s in run.steps if s.name == step_name)
    assert failed.status == StepStatus.FAILED
    assert failed.attempts == 1  # a validation error is not retried
    assert failed.error["message"] == f"{step_name} refused by the engine"
    assert failed.error["engine"]["exc_type"] == "ValidationError"
    later = [s for s in run.steps if s.position > failed.position]
    if BY_NAME[step_name].critical:
        assert run.status == RunStatus.FAILED
        assert all(s.status == StepStatus.NOT_REACHED for s in later)
        assert run.tenant.provisioning_status == "FAILED"
    else:
        assert run.status == RunStatus.PARTIAL
        assert all(s.status == StepStatus.COMPLETED for s in later)
        assert run.tenant.provisioning_status == "PARTIAL"
