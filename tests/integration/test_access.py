"""Who may do what: the authorization matrix, rate limits and the audit log."""

from __future__ import annotations

import uuid

import pytest

from provisioner.models import Role
from tests.helpers import new_tenant
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration
V1 = "/api/v1/provisioning/tenants"
T = "/api/v1/tenants"

# (method, path template, body, needs): READ routes may be read by members; STEER ones not.
ROUTES = [
    ("GET", T + "/{id}", None, "read"),
    ("GET", T + "/{id}/engine", None, "read"),
    ("GET", T + "/{id}/audit", None, "read"),
    ("GET", V1 + "/{id}/status", None, "read"),
    ("GET", V1 + "/{id}/logs", None, "read"),
    ("GET", V1 + "/{id}/runs", None, "read"),
    ("GET", "/api/provisioning/tenants/{id}/status", None, "read"),
    ("POST", V1 + "/{id}/start", {"provisioning_type": "BASIC"}, "steer"),
    ("POST", V1 + "/{id}/retry", {}, "steer"),
    ("POST", V1 + "/{id}/continue", {}, "steer"),
    ("POST", V1 + "/{id}/skip-step", {"step": "open_pos_session"}, "steer"),
    ("POST", V1 + "/{id}/cancel", {}, "steer"),
    ("PUT", T + "/{id}/engine", {"url": "http://127.0.0.1:9", "api_key": "k", "api_secret": "s"},
     "steer"),
    ("DELETE", T + "/{id}/engine", None, "steer"),
]  # fmt: skip
CALLERS = ["platform_admin", "owner", "admin", "member", "stranger", "anonymous"]


def expected(caller: str, own: bool, needs: str) -> str:
    if caller == "anonymous":
        return "unauthorized"
    if caller == "platform_admin":
        return "allowed"
    if caller == "stranger" or not own:
        return "hidden"
    if needs == "steer" and caller == "member":
        return "forbidden"
    return "allowed"


def outcome(answer) -> str:
    code = (answer.get_json(silent=True) or {}).get("error", {}).get("code")
    if answer.status_code == 401:
        return "unauthorized"
    if answer.status_code == 403:
        return "forbidden"
    if answer.status_code == 404 and code == "not_found":
        return "hidden"
    assert answer.status_code < 500, answer.get_json()
    return "allowed"  # 2xx, or a 404/409 about the run's state: the caller got through


@pytest.fixture(scope="module")
def matrix_world(app):
    """Two workspaces; callers with every role on the first and none on the second."""
    with app.app_context():
        own, other = new_tenant(), new_tenant()
        users = {name: make_user(admin=name == "platform_admin") for name in CALLERS[:-1]}
        for role in (Role.OWNER, Role.ADMIN, Role.MEMBER):
            join(users[role.value], own, role)
        join(make_user(), other, Role.OWNER)
        return own.id, other.id, {name: user.id for name, user in users.items()}


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(app_ctx, client, matrix_world, caller):
    from provisioner.extensions import db
    from provisioner.models import User

    own_id, other_id, user_ids = matrix_world
    api = Api(client, db.session.get(User, user_ids[caller])) if caller in user_ids else None
    seen = []
    for own in (True, False):
        tenant_id = own_id if own else other_id
        for method, template, body, needs in ROUTES:
            path = template.format(id=tenant_id)
            if api is None:
                answer = client.open(path, method=method, json=body)
            else:
                answer = api.request(method, path, json=body)
            seen.append((method, path, outcome(answer), expected(caller, own, needs)))
    wrong = [s for s in seen if s[2] != s[3]]
    assert not wrong, wrong
    assert len(seen) == 2 * len(ROUTES)


def test_unknown_ids_and_malformed_ids_are_404_for_everyone(admin_api):
    for tenant_id in (uuid.uuid4(), "not-a-uuid"):
        assert admin_api.get(f"{T}/{tenant_id}").status_code == 404
        assert admin_api.post(f"{V1}/{tenant_id}/start", json={}).status_code == 404


def test_rate_limit_per_workspace_answers_429_with_retry_after(app_ctx, client):
    tenant, owner = new_tenant(), make_user()
    join(owner, tenant, Role.OWNER)
    api = Api(client, owner)
    app_ctx.config["RATE_LIMIT_PER_TENANT"] = "3/minute"
    try:
        answers = [api.post(f"{V1}/{tenant.id}/cancel", json={}) for _ in range(4)]
    finally:
        app_ctx.config["RATE_LIMIT_PER_TENANT"] = "100000/minute"
    assert [a.status_code for a in answers] == [404, 404, 404, 429]  # no run yet, then limited
    limited = answers[-1]
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.json["error"]["code"] == "too_many_requests"
    # Another workspace of the same user is not limited by this one's count.
    second = new_tenant()
    join(owner, second, Role.OWNER)
    assert api.post(f"{V1}/{second.id}/cancel", json={}).status_code == 404


def test_rate_limit_per_user_across_workspaces(app_ctx, client):
    user = make_user()
    tenants = [new_tenant() for _ in range(3)]
    for tenant in tenants:
        join(user, tenant, Role.ADMIN)
    api = Api(client, user)
    app_ctx.config["RATE_LIMIT_PER_USER"] = "2/minute"
    try:
        codes = [api.post(f"{V1}/{t.id}/cancel", json={}).status_code for t in tenants]
    finally:
        app_ctx.config["RATE_LIMIT_PER_USER"] = "100000/minute"
    assert codes == [404, 404, 429]


def test_audit_log_lists_who_did_what(app_ctx, client, worker, sim):
    tenant, owner = new_tenant(), make_user()
    join(owner, tenant, Role.OWNER)
    api = Api(client, owner)
    assert (
        api.post(f"{V1}/{tenant.id}/start", json={"provisioning_type": "BASIC"}).status_code == 202
    )
    api.post(f"{V1}/{tenant.id}/cancel", json={})
    engine = {"url": app_ctx.config["ERPNEXT_URL"], "site": f"{tenant.slug}.own.example",
              "api_key": "k", "api_secret": "hush"}  # fmt: skip
    assert api.put(f"{T}/{tenant.id}/engine", json=engine).status_code == 200

    log = api.get(f"{T}/{tenant.id}/audit").json

    actions = [(e["action"], e["actor"]) for e in log["items"]]
    assert ("start", owner.email) in actions
    assert ("engine.set", owner.email) in actions
    assert log["total"] == len(log["items"])
    assert "hush" not in str(log)
