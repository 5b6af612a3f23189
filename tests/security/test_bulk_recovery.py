"""Bulk recovery (`POST /api/v1/provisioning/runs/continue`) acts across every workspace, so
only platform admins reach it, a few times a minute each, and only with filters that parse.

The attacks: a workspace owner (or member, or anyone without a token) continuing every
failed run of the platform; an admin's script (or a stolen admin token) hammering it; filter
values built to reach the database unchecked (NUL, CR/LF, naive or unrepresentable dates,
huge numbers, unknown fields).
"""

from __future__ import annotations

import pytest

from provisioner.extensions import db
from provisioner.models import AuditEntry, Role, Run, RunStatus
from provisioner.models.types import utcnow
from tests.helpers import new_tenant, start, wait_run
from tests.integration.conftest import Api, join, make_user
from tests.security.test_hostile_input import assert_error_shape

pytestmark = pytest.mark.integration
BULK = "/api/v1/provisioning/runs/continue"
NOTHING = {"since": "2999-01-01T00:00:00+00:00"}  # valid filters that match no run


def test_only_platform_admins_continue_in_bulk(quiet, client, worker, sim):
    since = utcnow().isoformat()
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="GET",
                  path="frappe.auth.get_logged_user$", count=1)  # fmt: skip
    tenant = new_tenant()
    failed = wait_run(start(tenant))
    assert failed.status == RunStatus.FAILED
    owner, member = make_user(), make_user()
    join(owner, tenant, Role.OWNER)
    join(member, tenant, Role.MEMBER)
    body = {"since": since}

    as_owner = Api(client, owner).post(BULK, json=body)
    as_member = Api(client, member).post(BULK, json=body)
    hostile_owner = Api(client, owner).post(BULK, json={"limit": "\x00"})
    anonymous = client.post(BULK, json=body)
    forged = client.post(BULK, json=body, headers={"Authorization": "Bearer not.a.token"})

    for answer in (as_owner, as_member, hostile_owner):  # refused before the body is read
        assert_error_shape(answer, 403)
        assert answer.json["error"]["code"] == "forbidden"
    for answer in (anonymous, forged):
        assert_error_shape(answer, 401)
    db.session.expire_all()
    assert db.session.get(Run, failed.id).status == RunStatus.FAILED
    continued = db.session.execute(
        db.select(AuditEntry).where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.action == "continue"
        )
    ).all()
    assert continued == []
    # The owner may still continue their own workspace, one at a time.
    own = Api(client, owner).post(f"/api/v1/provisioning/tenants/{tenant.id}/continue", json={})
    assert own.status_code == 202, own.json
    assert wait_run(failed.id).status == RunStatus.COMPLETED


def test_bulk_continues_are_rate_limited_per_admin(app, admin_api, client, monkeypatch):
    monkeypatch.setitem(app.config, "BULK_CONTINUE_RATE_LIMIT", "2/minute")
    invalid = [admin_api.post(BULK, json={"limit": 0}).status_code for _ in range(3)]
    allowed = [admin_api.post(BULK, json=NOTHING).status_code for _ in range(2)]
    limited = admin_api.post(BULK, json={**NOTHING, "dry_run": True})
    other_admin = Api(client, make_user(admin=True)).post(BULK, json=NOTHING)

    assert invalid == [422, 422, 422]  # refused bodies do no work and spend nothing
    assert allowed == [200, 200]
    assert_error_shape(limited, 429)
    assert limited.json["error"]["code"] == "too_many_requests"
    assert int(limited.headers["Retry-After"]) >= 1
    assert other_admin.status_code == 200  # a budget per admin


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": ["COMPLETED"]}, "status"),
        ({"status": ["CANCELLED"]}, "status"),
        ({"status": "FAILED"}, "status"),
        ({"status": []}, "status"),
        ({"status": ["FAILED\x00"]}, "status"),
        ({"failed_step": "no_such_step"}, "failed_step"),
        ({"failed_step": "create_company'; DROP TABLE tenants; --"}, "failed_step"),
        ({"failed_step": ["create_company"]}, "failed_step"),
        ({"engine_site": "erp.example.com\r\nX-Evil: 1"}, "engine_site"),
        ({"engine_site": "a\x00b.example.com"}, "engine_site"),
        ({"engine_site": "../../etc/passwd"}, "engine_site"),
        ({"engine_site": "x" * 300}, "engine_site"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),  # no offset: ambiguous
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:59:59-05:00"}, "until"),  # after year 9999 in UTC
        ({"since": 1_700_000_000}, "since"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": 2**70}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"dry_run": "perhaps"}, "dry_run"),
        ({"tenant_id": "anything"}, "tenant_id"),
    ],
)
def test_hostile_filters_are_422_naming_the_field(admin_api, body, field):
    answer = admin_api.post(BULK, json=body)

    assert_error_shape(answer, 422, field)
