"""The status read authorizes in its own one statement (`api/status.py`, issue 12): every
caller the other routes refuse, it refuses the same way, with or without an ETag.

Before: `GET …/status` went through `@authenticated` and `tenant_for` (three statements).
Now it reads the token's user, the workspace, the membership and the run together, so each
refusal is tried here for real (Flask app, PostgreSQL), with a current tag too: a tag must
never turn a refusal into a 304.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import delete

from provisioner.extensions import db
from provisioner.models import Role, Run, User
from provisioner.security import tokens
from tests.helpers import finished_run, new_tenant
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration
V1, PAGE = "/api/v1/provisioning/tenants", "/api/provisioning/tenants"


@pytest.fixture
def workspace(app_ctx):
    tenant = new_tenant()
    run_id = finished_run(tenant)
    return tenant, f'"{db.session.get(Run, run_id).version}"'


def read(client, token: str | None, tenant_id: object, tag: str | None, prefix: str = V1):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if tag is not None:
        headers["If-None-Match"] = tag
    return client.get(f"{prefix}/{tenant_id}/status", headers=headers)


def refusal(answer) -> tuple[int, str]:
    assert not answer.headers.get("ETag"), "a refusal carries no tag"
    return answer.status_code, answer.json["error"]["message"]


@pytest.mark.parametrize("prefix", [V1, PAGE])
@pytest.mark.parametrize("conditional", [False, True])
def test_members_and_admins_read_strangers_get_404(app_ctx, client, workspace, prefix, conditional):
    tenant, tag = workspace
    member, stranger, admin, other_owner = (
        make_user(),
        make_user(),
        make_user(admin=True),
        make_user(),
    )
    join(member, tenant, Role.MEMBER)
    join(other_owner, new_tenant(), Role.OWNER)  # owner of another workspace: a stranger here
    sent = tag if conditional else None
    for allowed in (member, admin):
        answer = read(client, Api(client, allowed).token, tenant.id, sent, prefix)
        assert answer.status_code == (304 if conditional else 200)
        assert answer.headers["ETag"] == tag
    for outsider in (stranger, other_owner):
        answer = read(client, Api(client, outsider).token, tenant.id, sent, prefix)
        assert refusal(answer) == (404, "no such workspace")  # as for one that does not exist


@pytest.mark.parametrize("conditional", [False, True])
def test_revoked_disabled_and_deleted_users_get_401(app_ctx, client, workspace, conditional):
    tenant, tag = workspace
    sent = tag if conditional else None
    revoked, disabled, deleted = make_user(), make_user(), make_user()
    tokens_of = {}
    for user in (revoked, disabled, deleted):
        join(user, tenant, Role.OWNER)
        tokens_of[user.id] = Api(client, user).token
        assert read(client, tokens_of[user.id], tenant.id, sent).status_code in (200, 304)
    revoked.revoke_tokens()
    disabled.disabled_at = datetime.now(UTC)
    db.session.commit()
    deleted_token = tokens_of[deleted.id]
    db.session.execute(delete(User).where(User.id == deleted.id))  # memberships cascade
    db.session.commit()

    assert refusal(read(client, tokens_of[revoked.id], tenant.id, sent)) == (
        401,
        "the token has been revoked; sign in again",
    )
    assert refusal(read(client, tokens_of[disabled.id], tenant.id, sent)) == (
        401,
        "the token has been revoked; sign in again",
    )
    assert refusal(read(client, deleted_token, tenant.id, sent)) == (
        401,
        "the token's user no longer exists",
    )


def test_bad_tokens_get_401_before_the_workspace_is_looked_at(app_ctx, client, workspace, app):
    tenant, tag = workspace
    owner = make_user()
    join(owner, tenant, Role.OWNER)
    good = Api(client, owner).token
    now, claims = datetime.now(UTC), {"sub": str(owner.id), "ver": owner.token_version}
    later, earlier = now + timedelta(hours=1), now - timedelta(seconds=1)
    other_key = "another-key-that-is-long-enough-for-hs256"
    forged = jwt.encode({**claims, "exp": later}, other_key, algorithm="HS256")
    expired = jwt.encode({**claims, "exp": earlier}, app.config["SECRET_KEY"], algorithm="HS256")
    for token in (None, "", "not-a-jwt", forged, expired, good + "x"):
        for target in (tenant.id, "not-an-id"):
            answer = read(client, token, target, tag)
            assert answer.status_code == 401, (token, target)
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    # A valid token and an id that names nothing: 404, as every route answers it.
    assert refusal(read(client, good, "not-an-id", tag)) == (404, "no such workspace")


def test_a_verified_token_is_still_checked_for_expiry_every_time(app_ctx, client, workspace, app):
    """Tokens whose signature checked out are kept per process; their expiry is not."""
    tenant, tag = workspace
    owner = make_user()
    join(owner, tenant, Role.OWNER)
    soon = datetime.now(UTC) + timedelta(seconds=2)
    claims = {"sub": str(owner.id), "ver": owner.token_version, "exp": soon}
    token = jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    assert read(client, token, tenant.id, tag).status_code == 304
    with app.test_request_context():
        assert tokens.subject(token).user_id == owner.id  # kept now
    tokens_expire_at = soon.timestamp()
    while datetime.now(UTC).timestamp() <= tokens_expire_at:
        time.sleep(0.05)  # until the token's last second has run out (at most ~2 s)
    assert refusal(read(client, token, tenant.id, tag)) == (
        401,
        "the token is invalid or has expired",
    )
