"""Part 4: rate limits count callers once they are known, and cannot be dodged.

The attacks: 30 calls without a token used up a workspace's budget (its owner then got
429); re-spelling the workspace id (capitals, no hyphens, {…}, urn:uuid:) or switching
between /api/v1/… and /api/provisioning/… started a fresh budget; sign-in had no
per-account throttle, and a bearer header moved a login onto another bucket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from provisioner.models import Role
from tests.helpers import new_tenant
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def owned(app_ctx, client):
    tenant, owner = new_tenant(), make_user()
    join(owner, tenant, Role.OWNER)
    return tenant, Api(client, owner)


def limit(app, monkeypatch, name: str, value: str) -> None:
    monkeypatch.setitem(app.config, name, value)


def test_calls_that_do_not_get_in_spend_nothing(app, client, monkeypatch, owned):
    tenant, owner = owned
    limit(app, monkeypatch, "RATE_LIMIT_PER_TENANT", "3/minute")
    member, stranger = make_user(), make_user()
    join(member, tenant, Role.MEMBER)
    path = f"/api/v1/provisioning/tenants/{tenant.id}/cancel"

    anonymous = [client.post(path, json={}).status_code for _ in range(30)]
    forged = client.post(path, json={}, headers={"Authorization": "Bearer not.a.token"})
    as_member = [Api(client, member).post(path, json={}).status_code for _ in range(5)]
    as_stranger = [Api(client, stranger).post(path, json={}).status_code for _ in range(5)]

    assert set(anonymous) == {401}
    assert forged.status_code == 401
    assert (set(as_member), set(as_stranger)) == ({403}, {404})
    assert owner.post(path, json={}).status_code == 404  # no run yet: it got in, not 429


def test_one_budget_per_workspace_however_its_id_is_spelled(app, client, monkeypatch, owned):
    tenant, owner = owned
    limit(app, monkeypatch, "RATE_LIMIT_PER_TENANT", "6/minute")
    hexed = tenant.id.hex
    spellings = [
        f"/api/v1/provisioning/tenants/{tenant.id}/cancel",
        f"/api/provisioning/tenants/{str(tenant.id).upper()}/cancel",
        f"/api/v1/provisioning/tenants/{hexed}/retry",
        f"/api/provisioning/tenants/{{{tenant.id}}}/skip-step",
        f"/api/v1/provisioning/tenants/urn:uuid:{tenant.id}/continue",
    ]
    codes = [owner.post(path, json={}).status_code for path in spellings]
    job = owner.post(
        "/api/v1/provisioning/jobs", json={"tenant_id": str(tenant.id), "job_type": "backup_site"}
    )
    limited = owner.post(spellings[0], json={})

    assert 429 not in codes, codes
    assert job.status_code == 409  # the sixth call: no site to back up
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json["error"]["code"] == "too_many_requests"
    other, _ = new_tenant(), None
    join(owner.user, other, Role.OWNER)
    assert owner.post(f"/api/v1/provisioning/tenants/{other.id}/cancel", json={}).status_code == 404


def test_failed_logins_are_throttled_per_account(app, app_ctx, client, monkeypatch):
    limit(app, monkeypatch, "LOGIN_FAILURES_PER_ACCOUNT", "3/minute")
    victim, other = make_user(), make_user()
    bearer = {"Authorization": f"Bearer {Api(client, other).token}"}
    wrong = {"email": victim.email, "password": "guess"}

    failures = [client.post(LOGIN, json=wrong).status_code for _ in range(3)]
    with_right_password = client.post(LOGIN, json={**wrong, "password": "user-password"})
    with_a_bearer = client.post(LOGIN, json=wrong, headers=bearer)
    upper = client.post(LOGIN, json={**wrong, "email": victim.email.upper()})

    assert failures == [401, 401, 401]
    for answer in (with_right_password, with_a_bearer, upper):
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.json["error"]["code"] == "too_many_requests"
    ok = client.post(LOGIN, json={"email": other.email, "password": "user-password"})
    assert ok.status_code == 200  # another account from the same address


def test_failed_logins_are_throttled_per_address(app, app_ctx, client, monkeypatch):
    limit(app, monkeypatch, "LOGIN_FAILURES_PER_ADDRESS", "3/minute")
    address = {"REMOTE_ADDR": "198.51.100.7"}
    users = [make_user() for _ in range(5)]

    def attempt(user, environ, **headers):
        body = {"email": user.email, "password": "guess"}
        return client.post(LOGIN, json=body, environ_base=environ, headers=headers).status_code

    codes = [attempt(user, address) for user in users[:3]]
    # Without trusted proxies (PROXY_FIX_HOPS=0) a forged X-Forwarded-For changes nothing.
    spoofed = attempt(users[3], address, **{"X-Forwarded-For": "203.0.113.1"})
    elsewhere = attempt(users[4], {"REMOTE_ADDR": "198.51.100.8"})

    assert (codes, spoofed, elsewhere) == ([401, 401, 401], 429, 401)


def test_behind_trusted_proxies_the_forwarded_address_counts():
    """PROXY_FIX_HOPS=1 (another app, in its own process): each client has its own budget."""
    script = """
import json
from provisioner import create_app
from tests.integration.conftest import make_user
app = create_app({"TESTING": True, "PROXY_FIX_HOPS": 1, "LOGIN_FAILURES_PER_ADDRESS": "2/minute"})
with app.app_context():
    emails = [make_user().email for _ in range(4)]
client = app.test_client()
def attempt(email, forwarded):
    body = {"email": email, "password": "guess"}
    return client.post("/api/v1/auth/login", json=body,
                       headers={"X-Forwarded-For": forwarded}).status_code
print(json.dumps([attempt(emails[0], "203.0.113.1"), attempt(emails[1], "203.0.113.1"),
                  attempt(emails[2], "203.0.113.1"), attempt(emails[3], "203.0.113.2")]))
"""
    done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [401, 401, 429, 401]
