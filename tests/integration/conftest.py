from __future__ import annotations

import uuid

import pytest

from provisioner.extensions import db
from provisioner.models import Membership, Role, Run
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.orchestration import runs
from provisioner.security import tokens
from provisioner.tenancy import create_user


class Api:
    """A signed-in caller of the HTTP API (Flask's test client, real database)."""

    def __init__(self, client, user) -> None:
        self.client, self.user = client, user
        self.token, _ = tokens.issue(user.id, user.token_version)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, json=None, **kw):
        return self.client.open(path, method=method, headers=self._headers(), json=json, **kw)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)


def make_user(*, admin: bool = False):
    user = create_user(f"user-{uuid.uuid4().hex[:8]}@example.com", "user-password", is_admin=admin)
    db.session.commit()
    return user


def join(user, tenant, role: Role) -> None:
    db.session.add(Membership(user=user, tenant=tenant, role=role))
    db.session.commit()


@pytest.fixture
def admin_api(app_ctx, client) -> Api:
    return Api(client, make_user(admin=True))


@pytest.fixture
def quiet(app_ctx):
    """No run left active by earlier tests: for tests that look at the whole database."""
    active = db.session.execute(db.select(Run.id).where(Run.status.in_(ACTIVE_RUN_STATUSES)))
    for run_id in active.scalars().all():
        runs.cancel(run_id, "tests")
    return app_ctx
