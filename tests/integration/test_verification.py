"""Verify and repair end to end: the API, real workers, real PostgreSQL, the simulator as engine.

Drift is made through the engine's own REST API, as a person would make it in ERPNext; what
the engine was asked (reads of a verification, writes of a repair) comes from the
simulator's call log, each verification's reads found by its correlation id.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from provisioner.extensions import db
from provisioner.models import (
    AuditEntry,
    Role,
    Run,
    RunStatus,
    Tenant,
    Verification,
    WebhookDelivery,
)
from provisioner.models.types import utcnow
from provisioner.models.verification import ACTIVE_VERIFICATION_STATUSES
from provisioner.orchestration import runs, verification_schedule
from tests.helpers import WALK_IN, assert_exactly_one_of_each, new_tenant, start, wait_run
from tests.integration.conftest import Api, join, make_user
from tests.integration.test_metrics import scrape, value
from tests.integration.test_webhooks import receivers, register  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

READ_BUDGET = 12
WRITES = ("POST", "PUT", "DELETE")
DRIFTED = ("missing", "changed")


def provisioned(**options) -> Tenant:
    tenant = new_tenant()
    run = wait_run(start(tenant, **options))
    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    return tenant


def path(tenant, action: str) -> str:
    return f"/api/v1/provisioning/tenants/{tenant.id}/{action}"


def wait_verification(until, timeout: float = 30) -> Verification:
    """Poll the database until `until()` returns a verification that is done."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        found = until()
        if found is not None and found.status not in ACTIVE_VERIFICATION_STATUSES:
            return found
        assert time.monotonic() < deadline, found and (found.status, found.error)
        time.sleep(0.1)


def done(verification_id) -> Verification:
    return wait_verification(lambda: db.session.get(Verification, uuid.UUID(str(verification_id))))


def asked_by(tenant, requested_by: str) -> Verification:
    return wait_verification(
        lambda: db.session.execute(
            db.select(Verification).where(
                Verification.tenant_id == tenant.id, Verification.requested_by == requested_by
            )
        ).scalar_one_or_none()
    )


def verified(api: Api, tenant) -> Verification:
    response = api.post(path(tenant, "verify"))
    assert response.status_code == 202, response.json
    return done(response.json["verification"]["id"])


def reads_of(sim, verification: Verification) -> list[dict]:
    return [c for c in sim.calls() if c["correlation_id"] == verification.task_id]


def drifted(verification: Verification) -> dict[tuple[str, str, str], dict]:
    return {
        (c["step"], c["doctype"], c["name"]): c
        for c in verification.checks
        if c["state"] in DRIFTED
    }


def drift(engine, tenant, run) -> None:
    """A stock setting switched, the walk-in customer and the main warehouse disabled."""
    engine.update_single("Stock Settings", {"valuation_method": "Moving Average"})
    engine.update("Customer", WALK_IN, {"disabled": 1})
    engine.update("Warehouse", run.meta["main_warehouse"], {"disabled": 1})


def test_a_whole_workspace_verifies_ok_reading_the_engine_at_most_twelve_times(
    quiet, admin_api, client, worker, sim
):
    tenant = provisioned()
    before = scrape(client)

    response = admin_api.post(path(tenant, "verify"))
    assert response.status_code == 202
    answer = response.json
    assert answer["already_active"] is False
    assert answer["verification"]["status"] == "pending"
    assert answer["verification"]["checks"] == []
    verification = done(answer["verification"]["id"])

    assert verification.status == "ok", verification.checks
    assert verification.error is None
    states = Counter(c["state"] for c in verification.checks)
    assert states == {"ok": len(verification.checks)}
    assert {c["step"] for c in verification.checks} == {
        "create_company", "import_chart_of_accounts", "create_warehouses", "configure_settings",
        "create_walk_in_customer", "create_pos_profile",
    }  # fmt: skip
    reads = reads_of(sim, verification)
    assert {c["method"] for c in reads} == {"GET"}
    assert len(reads) == verification.engine_reads <= READ_BUDGET

    shown = admin_api.get(path(tenant, "verification")).json
    assert shown["id"] == str(verification.id)
    assert shown["status"] == "ok"
    assert shown["checked_at"] > shown["started_at"] > shown["created_at"]
    assert shown["checks"][0].keys() >= {"step", "doctype", "name", "state", "expected",
                                         "actual", "message"}  # fmt: skip

    after = scrape(client)
    grew = value(after, "provisioner_workspaces", verification="ok") - value(
        before, "provisioner_workspaces", verification="ok"
    )
    assert grew == 1
    assert value(after, "provisioner_verification_checks", step="create_pos_profile",
                 state="ok") >= 3  # fmt: skip
    audit = db.session.execute(
        db.select(AuditEntry.action).where(AuditEntry.tenant_id == tenant.id)
    ).scalars()
    assert "verify" in list(audit)


def test_roles_and_refusals(admin_api, client, worker, sim):
    tenant = new_tenant()
    assert admin_api.get(path(tenant, "verification")).json["error"]["code"] == "not_verified"
    refused = admin_api.post(path(tenant, "verify"))
    assert refused.status_code == 409
    assert "nothing to verify yet" in refused.json["error"]["message"]
    repair = admin_api.post(path(tenant, "repair"))
    assert (repair.status_code, repair.json["error"]["code"]) == (409, "nothing_to_repair")

    member, stranger = make_user(), make_user()
    join(member, tenant, Role.MEMBER)
    as_member, as_stranger = Api(client, member), Api(client, stranger)
    assert as_member.get(path(tenant, "verification")).status_code == 404  # not verified yet
    assert as_member.post(path(tenant, "verify")).status_code == 403
    assert as_member.post(path(tenant, "repair")).status_code == 403
    for action in ("verify", "repair"):
        assert as_stranger.post(path(tenant, action)).status_code == 404
    assert as_stranger.get(path(tenant, "verification")).status_code == 404
    bad = admin_api.post(path(tenant, "verify"), json={"steps": ["create_company"]})
    assert (bad.status_code, list(bad.json["error"]["details"])) == (422, ["steps"])
    assert admin_api.post("/api/v1/provisioning/tenants/not-a-uuid/verify").status_code == 404


def test_asking_again_while_one_is_under_way_answers_that_one(admin_api, worker, sim):
    tenant = provisioned()
    sim.add_fault(kind="latency", seconds=1.5, method="GET", count=1)

    first = admin_api.post(path(tenant, "verify")).json
    second = admin_api.post(path(tenant, "verify"))

    assert second.status_code == 202
    assert second.json["already_active"] is True
    assert second.json["verification"]["id"] == first["verification"]["id"]
    assert done(first["verification"]["id"]).status == "ok"
    count = db.session.execute(
        db.select(db.func.count()).where(Verification.tenant_id == tenant.id)
    ).scalar_one()
    assert count == 1


def test_drift_is_reported_exactly_and_one_repair_mends_exactly_it(admin_api, worker, sim, engine):
    tenant = provisioned()
    run = db.session.execute(db.select(Run).where(Run.tenant_id == tenant.id)).scalar_one()
    main_store = run.meta["main_warehouse"]
    drift(engine, tenant, run)

    verification = verified(admin_api, tenant)

    assert verification.status == "drifted"
    assert {key: c["message"] for key, c in drifted(verification).items()} == {
        ("configure_settings", "Stock Settings", "Stock Settings"):
            "Stock Settings: valuation_method is Moving Average, the point of sale needs FIFO",
        ("create_walk_in_customer", "Customer", WALK_IN): f"Customer {WALK_IN} is disabled",
        ("create_warehouses", "Warehouse", main_store): f"Warehouse {main_store} is disabled",
    }  # fmt: skip
    assert len(reads_of(sim, verification)) <= READ_BUDGET
    shown = admin_api.get(path(tenant, "verification")).json
    assert shown["status"] == "drifted"

    since = sim.calls()[-1]["seq"]
    response = admin_api.post(path(tenant, "repair"))

    assert response.status_code == 202, response.json
    assert response.json["plan"] == "REPAIR"
    assert response.json["options"]["repair"] is True
    assert [s["name"] for s in response.json["steps"]] == [
        "create_warehouses", "configure_settings", "create_walk_in_customer",
    ]  # fmt: skip
    repair = wait_run(response.json["run_id"])
    assert repair.status == RunStatus.COMPLETED
    after = asked_by(tenant, f"repair run {repair.id}")
    assert after.status == "ok", drifted(after)
    assert len(reads_of(sim, after)) <= READ_BUDGET

    writes = [(c["method"], c["path"]) for c in sim.calls(since) if c["method"] in WRITES]
    assert sorted(writes) == [
        ("PUT", f"/api/resource/Customer/{WALK_IN}"),
        ("PUT", "/api/resource/Stock Settings/Stock Settings"),
        ("PUT", f"/api/resource/Warehouse/{main_store}"),
    ]
    assert_exactly_one_of_each(engine, tenant.name)
    again = admin_api.post(path(tenant, "repair"))
    assert (again.status_code, again.json["error"]["code"]) == (409, "nothing_to_repair")
    assert again.json["error"]["details"] == {"verification_status": "ok"}


def test_a_repair_waits_for_the_active_run(admin_api, worker, sim, engine):
    tenant = provisioned()
    engine.update("Customer", WALK_IN, {"disabled": 1})
    assert verified(admin_api, tenant).status == "drifted"
    sim.add_fault(kind="latency", seconds=5, method="GET", path="get_logged_user", count=1)
    active = start(tenant)

    refused = admin_api.post(path(tenant, "repair"))

    assert (refused.status_code, refused.json["error"]["code"]) == (409, "conflict")
    assert refused.json["error"]["details"]["run_id"] == str(active)
    runs.cancel(active, "tests")


def test_an_engine_that_cannot_be_read_fails_the_verification(admin_api, worker, sim):
    tenant = provisioned()
    sim.add_fault(kind="error", status=503, exc_type="SessionStopped", message="Maintenance")

    verification = verified(admin_api, tenant)

    assert verification.status == "failed"
    assert {c["state"] for c in verification.checks} == {"unknown"}
    total = len(verification.checks)
    assert verification.error.startswith(f"{total} of {total} documents could not be checked")
    assert "Maintenance" in verification.error
    refused = admin_api.post(path(tenant, "repair"))
    assert refused.json["error"]["details"] == {"verification_status": "failed"}


def test_a_drift_is_posted_once_as_workspace_drifted(
    admin_api,
    simulator_server,
    worker,
    sim,
    engine,
    receivers,  # noqa: F811
):
    receiver = receivers(200)
    tenant = provisioned()
    register(admin_api, tenant, receiver)
    engine.update("Customer", WALK_IN, {"disabled": 1})

    first, second = verified(admin_api, tenant), verified(admin_api, tenant)

    assert first.status == second.status == "drifted"
    # Written with each verification's outcome: once, for the same drift found twice.
    [delivery] = db.session.execute(
        db.select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant.id)
    ).scalars().all()  # fmt: skip
    assert delivery.event == "workspace.drifted"
    wait_for(lambda: receiver.received)
    [post] = receiver.received
    assert post["valid"]
    assert post["headers"]["X-Provisioner-Event"] == "workspace.drifted"
    payload = post["payload"]
    assert payload["tenant"] == {"id": str(tenant.id), "slug": tenant.slug}
    assert payload["verification"]["id"] == str(first.id)
    assert payload["verification"]["drifted"] == [{
        "step": "create_walk_in_customer", "doctype": "Customer", "name": WALK_IN,
        "state": "changed", "message": f"Customer {WALK_IN} is disabled",
    }]  # fmt: skip
    text = json.dumps(payload)
    engine_address = urlsplit(simulator_server.url).netloc
    for secret in ("test-secret", "test-key", engine_address, "expected", "actual"):
        assert secret not in text


def wait_for(read, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (found := read()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
        db.session.expire_all()
    return found


def test_the_cli_verifies_and_repairs(app, admin_api, worker, sim, engine):
    runner = app.test_cli_runner()
    tenant = provisioned()
    engine.update("Customer", WALK_IN, {"disabled": 1})

    shown = runner.invoke(args=["provisioning", "verify", tenant.slug, "--wait"])

    assert shown.exit_code == 1, shown.output
    assert "drifted" in shown.output
    assert f"Customer {WALK_IN} is disabled" in shown.output
    repaired = runner.invoke(args=["provisioning", "repair", tenant.slug])
    assert repaired.exit_code == 0, repaired.output
    assert "REPAIR" in repaired.output
    run = wait_run(repaired.output.split("run ", 2)[1].split()[0])
    assert run.status == RunStatus.COMPLETED
    assert asked_by(tenant, f"repair run {run.id}").status == "ok"
    refused = runner.invoke(args=["provisioning", "repair", tenant.slug])
    assert refused.exit_code == 1
    assert "nothing to repair: the latest verification is ok" in refused.output


def repairs_of(tenant) -> list[Run]:
    db.session.expire_all()
    return list(
        db.session.execute(
            db.select(Run)
            .where(Run.tenant_id == tenant.id, Run.plan == "REPAIR")
            .order_by(Run.created_at)
        ).scalars()
    )


def test_the_schedule_starts_a_trickle_per_site_and_fails_lost_ones(quiet, worker, sim, engine):
    app = quiet
    tenants = [provisioned() for _ in range(3)]
    wait_for(lambda: not busy())  # earlier tests' verifications are done
    lost = Verification(tenant_id=tenants[0].id, status="running", latest=False,
                        requested_by="tests", task_id="lost-task", checks=[],
                        created_at=utcnow() - timedelta(hours=2))  # fmt: skip
    db.session.add(lost)
    db.session.commit()
    app.config.update(VERIFY_INTERVAL=1, VERIFY_PER_SITE=2)
    try:
        began = utcnow()
        report = verification_schedule.tick()
    finally:
        app.config.update(VERIFY_INTERVAL=86400.0, VERIFY_PER_SITE=10)

    db.session.expire_all()
    assert db.session.get(Verification, lost.id).status == "failed"
    assert db.session.get(Verification, lost.id).error.startswith("lost:")
    assert report.lost == 1
    started = db.session.execute(
        db.select(Verification, Tenant)
        .join(Tenant, Tenant.id == Verification.tenant_id)
        .where(Verification.requested_by == "schedule", Verification.created_at >= began)
    ).all()
    per_site = Counter(t.engine_url if t.has_own_site else "shared" for _, t in started)
    assert per_site["shared"] == 2  # the cap of the shared site, though more are due there
    assert max(per_site.values()) == 2
    assert len(started) == report.started
    assert report.due >= len(tenants)
    for verification, _ in started:
        done(verification.id)  # (earlier tests' workspaces lost their documents: drifted)


def busy() -> list:
    db.session.expire_all()
    return db.session.execute(
        db.select(Verification.id).where(Verification.status.in_(ACTIVE_VERIFICATION_STATUSES))
    ).all()


@pytest.fixture
def auto_repairing_worker(worker_pool, monkeypatch):
    """The worker restarted with VERIFY_AUTO_REPAIR on, then as before."""
    monkeypatch.setenv("VERIFY_AUTO_REPAIR", "true")
    worker_pool.restart()
    yield worker_pool
    monkeypatch.delenv("VERIFY_AUTO_REPAIR")
    worker_pool.restart()


def test_a_verification_over_its_time_limit_is_recorded_failed(
    app, admin_api, worker, sim, monkeypatch
):
    tenant = provisioned()
    # The limits travel with the message: the asking process sets them (~0.1 s is usual).
    monkeypatch.setitem(app.config, "VERIFY_TIME_LIMIT", 3)
    sim.add_fault(kind="latency", seconds=1.5, method="GET")  # under ENGINE_READ_TIMEOUT

    verification = verified(admin_api, tenant)

    assert verification.status == "failed"
    assert verification.error == "not done within 3 s"
    assert admin_api.get(path(tenant, "verification")).json["error"] == "not done within 3 s"


def test_auto_repair_mends_a_drift_once_and_never_loops(
    app_ctx, admin_api, auto_repairing_worker, sim, engine
):
    tenant = provisioned()
    engine.update("Customer", WALK_IN, {"disabled": 1})
    assert verified(admin_api, tenant).status == "drifted"
    mended = wait_for(lambda: repairs_of(tenant))[0]
    assert wait_run(mended.id).status == RunStatus.COMPLETED
    assert mended.started_by == "auto-repair"
    assert asked_by(tenant, f"repair run {mended.id}").status == "ok"

    # A drift the repair cannot mend: verified drifted after it, and not repaired again.
    engine.update("Customer", WALK_IN, {"disabled": 1})
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="PUT",
                  path="Customer", message="customer locked")  # fmt: skip
    assert verified(admin_api, tenant).status == "drifted"
    failing = wait_for(lambda: repairs_of(tenant)[1:])[0]
    assert wait_run(failing.id).status == RunStatus.FAILED
    assert asked_by(tenant, f"repair run {failing.id}").status == "drifted"
    auto_repairing_worker.wait_for_log(
        f"auto-repair not started: this verification followed repair run {failing.id}"
    )
    assert len(repairs_of(tenant)) == 2
