"""The HTTP API: auth, validation, workspaces, provisioning routes (real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from provisioner.extensions import db
from provisioner.models import Role, Run, latest_run
from provisioner.schemas import dialects
from provisioner.schemas.run import status_document
from tests.helpers import finished_run, new_tenant, start, wait_run
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration
V1 = "/api/v1/provisioning/tenants"
PAGE = "/api/provisioning/tenants"


def workspace(**overrides):
    body = {
        "name": f"Shop {uuid.uuid4().hex[:6].upper()}",
        "country_code": "KE",
        "admin_email": f"owner-{uuid.uuid4().hex[:6]}@example.com",
        "admin_name": "Owner",
        "admin_password": "a-good-password",
        "provision": False,
    }
    return {**body, **overrides}


def test_login_gives_a_bearer_token(app_ctx, client):
    user = make_user()
    ok = client.post("/api/v1/auth/login", json={"email": user.email, "password": "user-password"})
    assert ok.status_code == 200
    assert ok.json["token_type"] == "Bearer"
    assert ok.json["expires_in"] == 3600
    me = client.get(
        "/api/v1/tenants", headers={"Authorization": f"Bearer {ok.json['access_token']}"}
    )
    assert me.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "nobody@example.com", "password": "x"}, 401, "invalid_credentials"),
        ({"email": "not-an-email", "password": "x"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
def test_login_refusals(app_ctx, client, body, status, code):
    answer = client.post("/api/v1/auth/login", json=body)
    assert answer.status_code == status
    assert answer.json["error"]["code"] == code


def test_malformed_json_is_400_not_500(app_ctx, client):
    answer = client.post("/api/v1/auth/login", data="{nope", content_type="application/json")
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "bad_request"
    listed = client.post("/api/v1/auth/login", json=[1, 2])
    assert listed.status_code == 400


def test_tokens_are_required_and_checked(app_ctx, client, app):
    assert client.get("/api/v1/tenants").status_code == 401
    bad = client.get("/api/v1/tenants", headers={"Authorization": "Bearer garbage"})
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"] == "Bearer"
    user = make_user()
    expired = jwt.encode(
        {"sub": str(user.id), "exp": datetime.now(UTC) - timedelta(seconds=5)},
        app.config["SECRET_KEY"],
        algorithm="HS256",
    )
    old = client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {expired}"})
    assert old.status_code == 401
    assert "expired" in old.json["error"]["message"]


def test_create_workspace_without_provisioning(admin_api):
    answer = admin_api.post("/api/v1/tenants", json=workspace(category="restaurant"))
    assert answer.status_code == 201, answer.json
    tenant = answer.json["tenant"]
    assert tenant["currency"] == "KES"
    assert tenant["provisioning_status"] == "NOT_PROVISIONED"
    assert answer.json["provisioning"] is None
    assert "admin_password" not in str(answer.json)
    assert admin_api.get(f"/api/v1/tenants/{tenant['id']}").json["slug"] == tenant["slug"]


def test_create_workspace_starts_full_pos_declared_up_front(admin_api):
    answer = admin_api.post("/api/v1/tenants", json=workspace(provision=True))
    assert answer.status_code == 201, answer.json
    run = answer.json["provisioning"]
    assert run["status"] == "PENDING"
    assert run["plan"] == "FULL_POS"
    assert run["total_steps"] == 9
    assert run["steps_completed"] == 0
    statuses = {s["name"]: s["status"] for s in run["steps"]}
    assert statuses.pop("create_demo_items") == "skipped"  # include_demo_data is off
    assert set(statuses.values()) == {"pending"}
    demo = next(s for s in run["steps"] if s["name"] == "create_demo_items")
    assert demo["note"] == "include_demo_data is off"
    assert demo["planned"] is False


def test_every_bad_field_is_named(admin_api):
    answer = admin_api.post(
        "/api/v1/tenants",
        json={
            "name": "<script>",
            "country_code": "XX",
            "admin_email": "nope",
            "admin_password": "short",
            "color": "blue",
        },
    )
    assert answer.status_code == 422
    details = answer.json["error"]["details"]
    assert set(details) == {
        "name",
        "country_code",
        "admin_email",
        "admin_password",
        "admin_name",
        "color",
    }


def test_duplicate_workspace_name_conflicts(admin_api):
    body = workspace()
    assert admin_api.post("/api/v1/tenants", json=body).status_code == 201
    again = admin_api.post("/api/v1/tenants", json={**body, "name": body["name"].lower()})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conflict"


def test_second_start_while_active_is_409(admin_api):
    tenant_id = admin_api.post("/api/v1/tenants", json=workspace()).json["tenant"]["id"]
    first = admin_api.post(f"{V1}/{tenant_id}/start", json={"provisioning_type": "BASIC"})
    assert first.status_code == 202, first.json
    assert first.json["total_steps"] == 4
    second = admin_api.post(f"{V1}/{tenant_id}/start", json={})
    assert second.status_code == 409
    assert second.json["error"]["details"]["run_id"] == first.json["run_id"]


def test_status_in_both_dialects_agree(admin_api, worker, sim):
    tenant_id = admin_api.post("/api/v1/tenants", json=workspace(provision=True)).json["tenant"][
        "id"
    ]
    wait_run(admin_api.get(f"{V1}/{tenant_id}/status").json["run_id"])  # a worker may be up
    v1 = admin_api.get(f"{V1}/{tenant_id}/status")
    page = admin_api.get(f"{PAGE}/{tenant_id}/status")
    assert v1.status_code == page.status_code == 200
    assert page.json == dialects.page_status(v1.json)
    assert [s["name"] for s in page.json["steps"]][:2] == ["step_0_engine_check", "step_2_company"]
    assert v1.headers["ETag"] == page.headers["ETag"]
    for key in ("run_id", "status", "current_step", "progress", "steps_completed", "total_steps",
                "steps", "errors", "started_at", "finished_at"):  # fmt: skip
        assert key in v1.json
    step = v1.json["steps"][0]
    for key in ("name", "status", "attempts", "started_at", "finished_at", "duration_ms", "error"):
        assert key in step


def test_custom_plan_dependencies_are_checked(admin_api):
    tenant_id = admin_api.post("/api/v1/tenants", json=workspace()).json["tenant"]["id"]
    answer = admin_api.post(
        f"{V1}/{tenant_id}/start",
        json={"provisioning_type": "CUSTOM", "steps": ["create_pos_profile"]},
    )
    assert answer.status_code == 422
    assert "create_pos_profile needs create_company" in answer.json["error"]["details"]["steps"][0]
    unknown = admin_api.post(f"{V1}/{tenant_id}/start", json={"steps": ["nope"]})
    assert unknown.status_code == 422
    assert "steps" in unknown.json["error"]["details"]


def test_status_before_any_run_and_unknown_tenant(admin_api):
    tenant_id = admin_api.post("/api/v1/tenants", json=workspace()).json["tenant"]["id"]
    assert admin_api.get(f"{V1}/{tenant_id}/status").json["error"]["code"] == "no_run"
    assert admin_api.get(f"{V1}/{uuid.uuid4()}/status").status_code == 404
    assert admin_api.get(f"{V1}/not-a-uuid/status").status_code == 404


def test_members_read_but_do_not_steer_and_strangers_see_nothing(app_ctx, client):
    tenant = new_tenant()
    member, stranger = make_user(), make_user()
    join(member, tenant, Role.MEMBER)
    as_member, as_stranger = Api(client, member), Api(client, stranger)
    assert as_member.get(f"/api/v1/tenants/{tenant.id}").status_code == 200
    refused = as_member.post(f"{V1}/{tenant.id}/start", json={})
    assert refused.status_code == 403
    assert as_stranger.get(f"/api/v1/tenants/{tenant.id}").status_code == 404
    assert as_stranger.post(f"{V1}/{tenant.id}/start", json={}).status_code == 404
    listed = as_stranger.get("/api/v1/tenants").json
    assert tenant.name not in str(listed)


def test_tenant_list_is_paginated(admin_api):
    for _ in range(3):
        admin_api.post("/api/v1/tenants", json=workspace())
    page = admin_api.get("/api/v1/tenants?page=1&size=2").json
    assert page["size"] == 2
    assert len(page["items"]) == 2
    assert page["total"] >= 3
    assert admin_api.get("/api/v1/tenants?size=1000").status_code == 422


def conditional_status(api: Api, prefix: str, tenant_id, tag: str | None = None):
    headers = {**api._headers(), **({"If-None-Match": tag} if tag is not None else {})}
    return api.client.get(f"{prefix}/{tenant_id}/status", headers=headers)


@pytest.mark.parametrize("prefix", [V1, PAGE])
def test_status_answers_304_while_the_callers_etag_is_current(admin_api, sim, prefix):
    tenant = new_tenant()
    run_id = finished_run(tenant)
    first = conditional_status(admin_api, prefix, tenant.id)
    etag = first.headers["ETag"]
    assert first.status_code == 200
    assert etag == f'"{db.session.get(Run, run_id).version}"'  # strong: no W/
    assert first.headers["Cache-Control"] == "private, no-cache"

    same = conditional_status(admin_api, prefix, tenant.id, etag)
    assert same.status_code == 304
    assert same.data == b""
    assert same.headers["ETag"] == etag
    assert conditional_status(admin_api, prefix, tenant.id, f'"nope", {etag}').status_code == 304

    for other in ('"0"', f"W/{etag}", "garbage", ""):
        fresh = conditional_status(admin_api, prefix, tenant.id, other)
        assert fresh.status_code == 200, other
        assert fresh.json == first.json
        assert fresh.headers["ETag"] == etag

    assert admin_api.post(f"{V1}/{tenant.id}/continue", json={}).status_code == 202  # changes
    assert admin_api.post(f"{V1}/{tenant.id}/cancel", json={}).status_code == 200
    changed = conditional_status(admin_api, prefix, tenant.id, etag)
    assert changed.status_code == 200
    assert changed.json["status"] == "CANCELLED"
    assert changed.json != first.json
    assert changed.headers["ETag"] != etag
    assert (
        conditional_status(admin_api, prefix, tenant.id, changed.headers["ETag"]).status_code == 304
    )
    stranger = Api(admin_api.client, make_user())
    hidden = conditional_status(stranger, prefix, tenant.id, changed.headers["ETag"])
    assert hidden.status_code == 404  # the tag opens nothing


def test_the_snapshot_is_the_document_built_afresh_after_real_runs(admin_api, worker, sim):
    customer = "^/api/resource/Customer$"
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST",
                  path=customer, message="no customer today", count=1)  # fmt: skip
    tenant = new_tenant()
    wait_run(start(tenant, include_demo_data=True))  # fails at the customer
    admin_api.post(f"{V1}/{tenant.id}/retry", json={"step": "create_walk_in_customer"})
    wait_run(latest_run(tenant.id).id)

    served = admin_api.get(f"{V1}/{tenant.id}/status")

    db.session.expire_all()
    run = latest_run(tenant.id, with_steps=True)
    assert run.status == "COMPLETED"
    assert served.json == status_document(run)
    assert served.headers["ETag"] == f'"{run.version}"'


def test_a_run_without_a_snapshot_is_built_answered_and_kept(admin_api, sim):
    tenant = new_tenant()
    run_id = finished_run(tenant)
    expected = admin_api.get(f"{V1}/{tenant.id}/status").json
    db.session.execute(db.update(Run).where(Run.id == run_id).values(status_doc=db.null()))
    db.session.commit()  # as a run from before migration 0005 is

    answer = admin_api.get(f"{V1}/{tenant.id}/status")

    assert answer.status_code == 200
    assert answer.json == expected
    kept = db.session.execute(db.select(Run.status_doc).where(Run.id == run_id)).scalar_one()
    assert kept == expected


def test_a_stale_build_never_overwrites_a_newer_snapshot(app_ctx, sim):
    from provisioner.api import status as snapshots

    tenant = new_tenant()
    run_id = finished_run(tenant)
    version = db.session.get(Run, run_id).version
    db.session.execute(db.update(Run).where(Run.id == run_id).values(status_doc=db.null()))
    db.session.commit()

    snapshots._build_and_keep(run_id, version - 1)  # a change came in since it was read

    stored = db.session.execute(db.select(Run.status_doc).where(Run.id == run_id)).scalar_one()
    assert stored is None


def test_a_status_read_survives_the_database_dropping_its_connection(admin_api):
    """The reads engine has no pre-ping (`config.binds`): a pooled connection the database
    dropped (a restart, an idle timeout) costs that read one retry, not an error."""
    tenant = new_tenant()
    finished_run(tenant)
    path, reads = f"{V1}/{tenant.id}/status", db.engines["reads"]
    reads.dispose()  # from here on, its pool holds only what this test's reads open
    expected = admin_api.get(path).json
    assert reads.pool.checkedin() == 1  # the connection that read it, kept for the next read
    with reads.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert db.session.execute(db.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    db.session.commit()

    again = admin_api.get(path)

    assert again.status_code == 200
    assert again.json == expected
    with reads.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
