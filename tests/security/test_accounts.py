"""Part 8: people can be disabled and their tokens revoked, and workspaces manage members.

Before: only `users create` existed; a token lived until it expired whatever happened to
its user, and memberships could only be made by creating a workspace.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from provisioner.extensions import db
from provisioner.models import AuditEntry, Membership, Role, Run
from tests.helpers import finished_run, new_tenant
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration
LOGIN = "/api/v1/auth/login"
T = "/api/v1/tenants"


def cli(app, *args: str):
    done = app.test_cli_runner().invoke(args=["users", *args])
    assert done.exit_code == 0, done.output
    return done.output


def login(client, email: str, password: str):
    return client.post(LOGIN, json={"email": email, "password": password})


def test_disabling_a_user_ends_their_tokens_at_once(app, app_ctx, client):
    user = make_user()
    token = login(client, user.email, "user-password").json["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{T}", headers=bearer).status_code == 200

    cli(app, "disable", user.email)

    revoked = client.get(f"{T}", headers=bearer)
    assert revoked.status_code == 401
    assert revoked.json["error"]["message"] == "the token has been revoked; sign in again"
    refused = login(client, user.email, "user-password")
    assert (refused.status_code, refused.json["error"]["code"]) == (403, "account_disabled")
    assert f"{user.email}  {user.id}  user  disabled" in cli(app, "list")

    cli(app, "enable", user.email)
    assert client.get(f"{T}", headers=bearer).status_code == 401  # the old token stays dead
    again = login(client, user.email, "user-password")
    assert (
        client.get(T, headers={"Authorization": f"Bearer {again.json['access_token']}"}).status_code
        == 200
    )


def test_a_new_password_ends_the_old_tokens(app, app_ctx, client):
    user = make_user()
    old = Api(client, user)
    assert old.get(T).status_code == 200

    cli(app, "set-password", user.email, "--password", "a-brand-new-password")

    assert old.get(T).status_code == 401
    assert login(client, user.email, "user-password").status_code == 401
    assert login(client, user.email, "a-brand-new-password").status_code == 200


@pytest.mark.parametrize("caller", ["platform admin", "member"])
def test_a_status_read_is_one_statement(app_ctx, client, caller):
    """The token's user (version, disabled state), the workspace, the caller's role and the
    latest run's version come in one statement (`api/status.py`); a 304 leaves the snapshot
    unread, and a stale tag costs one statement more."""
    tenant = new_tenant()
    user = make_user(admin=caller == "platform admin")
    if caller == "member":
        join(user, tenant, Role.MEMBER)
    api, path = Api(client, user), f"/api/v1/provisioning/tenants/{tenant.id}/status"

    def statements(headers: dict[str, str] | None = None) -> tuple[int, list[str]]:
        db.session.expunge_all()  # what a request of its own starts with: nothing loaded yet
        seen: list[str] = []

        def count(_conn, _cursor, statement, *_):
            seen.append(statement)

        engines = list(db.engines.values())  # the session's and the status read's
        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        try:
            answer = client.get(path, headers={**api._headers(), **(headers or {})})
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", count)
        return answer.status_code, seen

    status, read = statements()
    assert (status, len(read)) == (404, 1)  # no run yet: still one
    run_id = finished_run(tenant)
    tag = f'"{db.session.get(Run, run_id).version}"'
    status, read = statements()
    assert (status, len(read)) == (200, 1)
    assert "FROM users" in read[0]
    assert "status_doc" in read[0]
    status, read = statements({"If-None-Match": tag})
    assert (status, len(read)) == (304, 1)
    assert "status_doc" not in read[0]
    status, read = statements({"If-None-Match": '"0"'})
    assert (status, len(read)) == (200, 2)


def test_owners_manage_members(app_ctx, client):
    tenant, owner, newcomer, outsider = new_tenant(), make_user(), make_user(), make_user()
    join(owner, tenant, Role.OWNER)
    as_owner, as_newcomer = Api(client, owner), Api(client, newcomer)
    members = f"{T}/{tenant.id}/members"

    assert as_newcomer.get(f"{T}/{tenant.id}").status_code == 404
    added = as_owner.post(members, json={"email": newcomer.email.upper(), "role": "member"})
    assert added.status_code == 200, added.json
    assert (added.json["user_id"], added.json["role"]) == (str(newcomer.id), "member")
    assert as_newcomer.get(f"{T}/{tenant.id}").status_code == 200
    assert as_newcomer.post(members, json={"email": outsider.email}).status_code == 403
    listed = as_newcomer.get(members).json["items"]
    assert {(m["email"], m["role"]) for m in listed} >= {
        (owner.email, "owner"), (newcomer.email, "member"),
    }  # fmt: skip
    assert len(listed) == 3  # and the owner the workspace was made with
    unknown = as_owner.post(members, json={"email": "nobody@example.com"})
    assert unknown.status_code == 422
    assert "email" in unknown.json["error"]["details"]

    assert as_owner.request("DELETE", f"{members}/{newcomer.id}").status_code == 204
    assert as_newcomer.get(f"{T}/{tenant.id}").status_code == 404
    assert as_owner.request("DELETE", f"{members}/{newcomer.id}").status_code == 404
    actions = db.session.execute(
        select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.tenant_id == tenant.id)
    ).all()
    assert {("member.add", owner.email), ("member.remove", owner.email)} <= set(actions)


def test_a_workspace_keeps_an_owner_and_admins_do_not_make_owners(app_ctx, client):
    tenant, owner, admin, other = new_tenant(), make_user(), make_user(), make_user()
    join(owner, tenant, Role.OWNER)
    join(admin, tenant, Role.ADMIN)
    as_owner, as_admin = Api(client, owner), Api(client, admin)
    members = f"{T}/{tenant.id}/members"
    # The owner the workspace was created with, plus `owner`: remove the first.
    first = db.session.execute(
        select(Membership).where(Membership.tenant_id == tenant.id, Membership.user_id != owner.id,
                                 Membership.role == Role.OWNER)
    ).scalar_one()  # fmt: skip
    assert as_owner.request("DELETE", f"{members}/{first.user_id}").status_code == 204

    assert as_admin.post(members, json={"email": other.email, "role": "owner"}).status_code == 403
    assert as_admin.request("DELETE", f"{members}/{owner.id}").status_code == 403
    assert as_admin.post(members, json={"email": other.email, "role": "admin"}).status_code == 200
    last = as_owner.request("DELETE", f"{members}/{owner.id}")
    assert last.status_code == 409
    assert "at least one owner" in last.json["error"]["message"]
    demoted = as_owner.post(members, json={"email": owner.email, "role": "member"})
    assert demoted.status_code == 409
    assert as_owner.post(members, json={"email": other.email, "role": "owner"}).status_code == 200
    assert as_owner.request("DELETE", f"{members}/{owner.id}").status_code == 204
