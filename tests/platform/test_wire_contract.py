"""The platform page's wire contract on the unversioned routes, replayed for real.

The platform's workspace page and its test plan were written against the provisioning API
the platform documented. Every request they make is made here against the real app, with
real workers, the simulator as the engine and the real PostgreSQL, and every documented
field and status code is checked: workspace creation (`/iam/tenants`, `/api/iam/tenants`),
then the test plan's curl sequence create → start → poll → fail → retry one step → skip
the items step → continue → logs, and the site jobs the page lists.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from provisioner.extensions import db
from provisioner.models import Role, RunEvent
from provisioner.schemas.dialects import PAGE_STEP_IDS
from tests.helpers import new_tenant
from tests.integration.conftest import Api, join, make_user
from tests.integration.site_job_helpers import JOBS, wait_job

pytestmark = pytest.mark.integration

PAGE = "/api/provisioning/tenants"
V1 = "/api/v1/provisioning/tenants"
PAGE_STEPS = [
    "step_0_engine_check",
    "step_2_company",
    "step_3_chart_of_accounts",
    "step_4_warehouses",
    "step_5_settings",
    "step_6_items",
    "step_7_customer",
    "step_8_pos_profile",
    "step_9_pos_session",
]
FINAL = ("COMPLETED", "PARTIAL", "FAILED", "CANCELLED")
OPTIONS = {"include_demo_data": True, "pos_store_enabled": True, "country_template": True}
# The engine calls that only one step makes (see tests/integration/test_step_faults.py).
CHECK = "frappe.auth.get_logged_user$"
COMPANY = "^/api/resource/Company$"
ITEM = "^/api/resource/Item$"
CUSTOMER = "^/api/resource/Customer$"


def page_workspace(admin_email: str) -> dict[str, str]:
    """The body the page sends to create a workspace."""
    return {
        "name": f"Page Shop {uuid.uuid4().hex[:6].upper()}",
        "category": "retail",
        "country_code": "KE",
        "admin_email": admin_email,
        "admin_name": "Page Owner",
        "admin_password": "a-good-password",
        "engine": "erpnext",
    }


def assert_page_status(body: dict[str, Any]) -> None:
    """Every documented field of the page's status body, with its type and vocabulary."""
    assert body["status"] in ("IN_PROGRESS", *FINAL), body["status"]  # never PENDING
    assert body["current_step"] in (*PAGE_STEPS, None)
    assert isinstance(body["progress"], float)
    assert 0 <= body["progress"] <= 100
    assert isinstance(body["steps_completed"], int)
    assert body["total_steps"] == len(body["steps"])
    assert isinstance(body["started_at"], str | None)
    names = [s["name"] for s in body["steps"]]
    assert names == [name for name in PAGE_STEPS if name in names]
    for error in body["errors"]:
        assert error["step"] in PAGE_STEPS, error
        assert error["message"], error


def step_status(body: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in body["steps"]}


def poll(api: Api, tenant_id: str, timeout: float = 90) -> dict[str, Any]:
    """GET …/status as the page does, until the run is final; every answer is checked."""
    deadline = time.monotonic() + timeout
    while True:
        answer = api.get(f"{PAGE}/{tenant_id}/status")
        assert answer.status_code == 200, answer.json
        assert_page_status(answer.json)
        if answer.json["status"] in FINAL:
            return answer.json
        assert time.monotonic() < deadline, answer.json
        time.sleep(0.1)


@pytest.fixture
def owner_api(app_ctx, client) -> Api:
    """A signed-in person of the platform (no admin), as the page's user is."""
    return Api(client, make_user())


@pytest.mark.parametrize("path", ["/iam/tenants", "/api/iam/tenants"])
def test_creating_a_workspace_starts_provisioning_and_answers_its_status(
    quiet, owner_api, worker, sim, path
):
    sim.add_fault(kind="latency", seconds=1, method="POST", path=COMPANY, count=1)

    sent = page_workspace(owner_api.user.email)

    answer = owner_api.post(path, json=sent)

    assert answer.status_code == 201, answer.json
    tenant = answer.json["tenant"]
    assert (tenant["name"], tenant["country_code"], tenant["category"]) == (
        sent["name"], "KE", "retail",
    )  # fmt: skip
    assert tenant["currency"] == "KES"
    assert tenant["provisioning_status"] == "PROVISIONING"
    status = answer.json["provisioning"]
    assert_page_status(status)
    assert status["status"] == "IN_PROGRESS"  # queued or running: the page knows no PENDING
    assert status["current_step"] in PAGE_STEPS[:2]
    assert status["total_steps"] == 9
    assert [s["name"] for s in status["steps"]] == PAGE_STEPS
    assert "provisioning_note" not in answer.json
    assert "a-good-password" not in answer.text
    finished = poll(owner_api, tenant["id"])
    assert finished["status"] == "COMPLETED"
    assert (finished["progress"], finished["steps_completed"]) == (100.0, 8)  # items: off
    assert step_status(finished)["step_6_items"] == "skipped"


@pytest.mark.parametrize(
    ("fault", "waits_because"),
    [
        ({"kind": "drop"}, "it cannot be reached"),
        ({"kind": "timeout", "seconds": 1}, "no answer within 0.5 s"),
        ({"kind": "error", "status": 503, "exc_type": "SessionStopped"}, "it answered 503"),
        ({"kind": "error", "status": 401, "exc_type": "AuthenticationError"}, None),
    ],
    ids=["unreachable", "silent", "busy", "refusing"],
)
def test_only_an_engine_that_cannot_take_work_makes_a_new_workspace_wait(
    app, admin_api, sim, monkeypatch, fault, waits_because
):
    monkeypatch.setitem(app.config, "ENGINE_PROBE_TIMEOUT", 0.5)
    sim.add_fault(path=CHECK, count=1, **fault)

    answer = admin_api.post("/api/v1/tenants", json=page_workspace("someone@example.com"))

    assert answer.status_code == 201, answer.json
    if waits_because is None:  # it answers, so the run starts and its first step will say why
        assert answer.json["provisioning"]["plan"] == "FULL_POS"
        return
    assert answer.json["provisioning"] is None
    assert f"the engine is offline ({waits_because})" in answer.json["provisioning_note"]
    assert answer.json["tenant"]["provisioning_status"] == "NOT_PROVISIONED"
    assert "127.0.0.1" not in answer.json["provisioning_note"]


def test_the_test_plan_create_start_poll_fail_retry_skip_continue_logs(
    quiet, owner_api, worker, sim
):
    # create, while the engine is offline: the workspace is made and waits.
    sim.add_fault(kind="drop", path=CHECK, count=1)
    created = owner_api.post("/api/iam/tenants", json=page_workspace(owner_api.user.email))
    assert created.status_code == 201, created.json
    tenant_id = created.json["tenant"]["id"]
    assert created.json["provisioning"] is None
    assert "engine is offline" in created.json["provisioning_note"]
    assert created.json["tenant"]["provisioning_status"] == "NOT_PROVISIONED"
    waiting = owner_api.get(f"{PAGE}/{tenant_id}/status")
    assert (waiting.status_code, waiting.json["error"]["code"]) == (404, "no_run")

    # start: answers at once (the engine is slow to answer the first step's check).
    sim.add_fault(kind="latency", seconds=1.5, path=CHECK, count=1)
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST", path=ITEM,
                  message="Item Group Products does not exist")  # fmt: skip
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST",
                  path=CUSTOMER, message="Customer Group Commercial does not exist")  # fmt: skip
    started = owner_api.post(f"{PAGE}/{tenant_id}/start", json=OPTIONS)
    assert started.status_code == 200, started.json
    assert_page_status(started.json)
    assert started.json["status"] == "IN_PROGRESS"
    assert started.json["progress"] == 0
    assert started.json["current_step"] == "step_0_engine_check"
    assert started.json["steps_completed"] == 0
    assert started.json["total_steps"] == 9
    assert started.json["errors"] == []
    again = owner_api.post(f"{PAGE}/{tenant_id}/start", json=OPTIONS)
    assert again.status_code == 409

    # poll until it fails: the items failed (the run went on), the customer stopped it.
    failed = poll(owner_api, tenant_id)
    assert failed["status"] == "FAILED"
    assert failed["current_step"] is None
    assert {e["step"]: e["status"] for e in failed["errors"]} == {
        "step_6_items": "failed",
        "step_7_customer": "failed",
    }
    customer_error = next(e for e in failed["errors"] if e["step"] == "step_7_customer")
    assert "Customer Group Commercial does not exist" in customer_error["message"]
    assert step_status(failed)["step_8_pos_profile"] == "not_reached"
    assert failed["steps_completed"] == 5
    assert failed["progress"] == 66.0  # 5 completed and the items failed softly, of 9

    # retry one step, by the page's identifier: the cause is still there, it fails again.
    retried = owner_api.post(f"{PAGE}/{tenant_id}/retry", json={"step": "step_7_customer"})
    assert retried.status_code == 200, retried.json
    assert_page_status(retried.json)
    assert retried.json["status"] == "IN_PROGRESS"
    assert retried.json["current_step"] == "step_6_items"  # the failed items rerun as well
    assert retried.json["errors"] == []
    assert poll(owner_api, tenant_id)["status"] == "FAILED"

    # skip the items step: only an optional step may be skipped.
    refused = owner_api.post(f"{PAGE}/{tenant_id}/skip-step", json={"step": "step_2_company"})
    assert refused.status_code == 409
    skipped = owner_api.post(f"{PAGE}/{tenant_id}/skip-step", json={"step": "step_6_items"})
    assert skipped.status_code == 200, skipped.json
    assert_page_status(skipped.json)
    assert step_status(skipped.json)["step_6_items"] == "skipped"
    assert [e["step"] for e in skipped.json["errors"]] == ["step_7_customer"]

    # continue, once the engine takes the customer: the rest of the plan runs.
    sim.clear_faults()
    continued = owner_api.post(f"{PAGE}/{tenant_id}/continue", json={})
    assert continued.status_code == 200, continued.json
    assert_page_status(continued.json)
    assert continued.json["status"] == "IN_PROGRESS"
    assert continued.json["current_step"] == "step_7_customer"
    done = poll(owner_api, tenant_id)
    assert done["status"] == "PARTIAL"  # a planned step was skipped
    assert done["progress"] == 100.0
    assert done["errors"] == []
    assert step_status(done) == {
        **dict.fromkeys(PAGE_STEPS, "completed"),
        "step_6_items": "skipped",
    }

    # logs: one entry per step event, oldest first, in the page's terms.
    logs = owner_api.get(f"{PAGE}/{tenant_id}/logs")
    assert logs.status_code == 200
    entries = logs.json["logs"]
    run_id = owner_api.get(f"{V1}/{tenant_id}/status").json["run_id"]
    step_events = db.session.execute(
        db.select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.step.is_not(None))
    ).scalars()
    assert len(entries) == len(list(step_events))
    for entry in entries:
        assert {"step", "status", "message", "completed_at", "duration_ms"} <= entry.keys()
        assert entry["step"] in PAGE_STEPS
        assert isinstance(entry["duration_ms"], int | None)
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert [e["completed_at"] for e in entries] == sorted(e["completed_at"] for e in entries)
    customer = [(e["kind"], e["status"]) for e in entries if e["step"] == "step_7_customer"]
    assert customer.count(("step_failed", "failed")) == 2
    assert customer[-1] == ("step_completed", "completed")
    assert ("step_skipped", "skipped") in [
        (e["kind"], e["status"]) for e in entries if e["step"] == "step_6_items"
    ]
    completed = [e for e in entries if e["kind"] == "step_completed"]
    assert completed
    assert all(isinstance(e["duration_ms"], int) for e in completed)
    assert any("Customer Group Commercial" in (e["message"] or "") for e in entries)

    # The same run on v1: Provisioner's names and shapes, unchanged.
    v1 = owner_api.get(f"{V1}/{tenant_id}/status").json
    assert [s["name"] for s in v1["steps"]] == list(PAGE_STEP_IDS)
    assert (v1["status"], v1["progress"], v1["current_step"]) == ("PARTIAL", 100, None)
    assert isinstance(v1["progress"], int)
    assert "events" in owner_api.get(f"{V1}/{tenant_id}/logs").json


def test_retry_of_every_failed_step_and_cancel_answer_the_status_body(
    quiet, admin_api, worker, sim
):
    tenant = new_tenant()
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST",
                  path=CUSTOMER, message="Customer Group Commercial does not exist",
                  count=1)  # fmt: skip
    started = admin_api.post(f"{PAGE}/{tenant.id}/start", json={})
    assert started.status_code == 200
    assert poll(admin_api, str(tenant.id))["errors"][0]["step"] == "step_7_customer"
    sim.add_fault(kind="latency", seconds=5, method="POST", path=CUSTOMER, count=1)

    retried = admin_api.post(f"{PAGE}/{tenant.id}/retry", json={})  # all failed steps

    assert retried.status_code == 200, retried.json
    assert_page_status(retried.json)
    assert retried.json["current_step"] == "step_7_customer"
    cancelled = admin_api.post(f"{PAGE}/{tenant.id}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.json
    assert_page_status(cancelled.json)
    assert cancelled.json["status"] == "CANCELLED"


def test_step_identifiers_are_checked_and_v1_accepts_both_vocabularies(
    quiet, admin_api, worker, sim
):
    tenant = new_tenant()
    unknown = admin_api.post(f"{PAGE}/{tenant.id}/retry", json={"step": "step_1_nothing"})
    assert unknown.status_code == 422
    assert "step" in unknown.json["error"]["details"]
    for prefix in (PAGE, V1):  # skip-step needs a step, in either vocabulary
        missing = admin_api.post(f"{prefix}/{tenant.id}/skip-step", json={})
        assert missing.json["error"]["details"] == {"step": ["Missing data for required field."]}
    sim.add_fault(kind="latency", seconds=5, method="POST", path=COMPANY, count=1)
    started = admin_api.post(f"{V1}/{tenant.id}/start", json={"include_demo_data": True})
    assert started.status_code == 202

    skipped = admin_api.post(f"{V1}/{tenant.id}/skip-step", json={"step": "step_6_items"})

    assert skipped.status_code == 200, skipped.json
    steps = {s["name"]: s["status"] for s in skipped.json["steps"]}
    assert steps["create_demo_items"] == "skipped"
    assert skipped.json["current_step"] in ("check_engine", "create_company")
    also = admin_api.post(f"{V1}/{tenant.id}/skip-step", json={"step": "open_pos_session"})
    assert also.status_code == 200
    admin_api.post(f"{V1}/{tenant.id}/cancel", json={})
    page = admin_api.get(f"{PAGE}/{tenant.id}/runs").json["items"][0]
    v1 = admin_api.get(f"{V1}/{tenant.id}/runs").json["items"][0]
    assert (page["status"], v1["status"]) == ("CANCELLED", "CANCELLED")
    assert isinstance(page["progress"], float)
    assert isinstance(v1["progress"], int)


def test_site_jobs_act_on_the_callers_only_workspace(app_ctx, client, worker, sim):
    owner = make_user()
    tenant = new_tenant()
    join(owner, tenant, Role.OWNER)
    api = Api(client, owner)

    answer = api.post(JOBS, json={"job_type": "create_site"})

    assert answer.status_code == 201, answer.json
    assert answer.json["tenant_id"] == str(tenant.id)
    for key in ("progress", "message", "error", "started_at", "completed_at"):
        assert key in answer.json
    job = wait_job(answer.json["id"])
    shown = api.get(f"{JOBS}/{job.id}").json
    assert (shown["status"], shown["progress"]) == ("completed", 100)
    assert shown["completed_at"] == shown["finished_at"] is not None
    assert shown["started_at"] is not None
    assert shown["error"] is None
    listed = api.get(f"{JOBS}?page=1&size=1").json
    assert (listed["page"], listed["size"], listed["total"]) == (1, 1, 1)
    assert listed["items"][0]["completed_at"] == shown["completed_at"]

    join(owner, new_tenant(), Role.OWNER)  # two workspaces now: which one is meant?
    ambiguous = api.post(JOBS, json={"job_type": "backup_site"})
    assert ambiguous.status_code == 422
    assert set(ambiguous.json["error"]["details"]) == {"tenant_id"}
    nobody = Api(client, make_user()).post(JOBS, json={"job_type": "backup_site"})
    assert set(nobody.json["error"]["details"]) == {"tenant_id"}


def test_the_openapi_document_shows_each_dialect(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/iam/tenants", "/api/iam/tenants"):
        assert paths[path]["post"]["responses"]["201"]
    page_start = paths["/api/provisioning/tenants/{tenant_id}/start"]["post"]["responses"]
    v1_start = paths["/api/v1/provisioning/tenants/{tenant_id}/start"]["post"]["responses"]
    assert "200" in page_start
    assert "202" not in page_start
    assert "202" in v1_start
    page_logs = paths["/api/provisioning/tenants/{tenant_id}/logs"]["get"]["responses"]["200"]
    assert page_logs["content"]["application/json"]["schema"]["$ref"].endswith("/PageLog")


def test_one_view_serves_both_prefixes(app):
    views = app.view_functions
    for name in ("start", "status", "retry", "continue_", "skip_step", "cancel", "logs"):
        page, v1 = views[f"provisioning_legacy.{name}"], views[f"provisioning.{name}"]
        assert page is not v1
        assert page.__wrapped__ is v1.__wrapped__
    assert views["iam.create"].__wrapped__ is views["tenants.create"].__wrapped__
