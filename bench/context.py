"""The environment of one `make bench`: settings, the Flask app on the scratch database, tenants."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.common import REDIS_URL

RUN_ID = uuid.uuid4().hex[:6]


def bench_env(database_url: str) -> dict[str, str]:
    """Settings for the driver, gunicorn and the workers (set before the app is imported)."""
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": f"{REDIS_URL}/0",
        "CELERY_RESULT_BACKEND": f"{REDIS_URL}/1",
        "CELERY_DEFAULT_QUEUE": f"bench-{RUN_ID}",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256",
        "RATE_LIMIT_PER_USER": "10000000/minute",
        "RATE_LIMIT_PER_TENANT": "10000000/minute",
        "RATELIMIT_KEY_PREFIX": f"bench-{RUN_ID}-limits",
        "ENGINE_HEALTH_TTL": "45",
        "LOG_LEVEL": "WARNING",
        "ERPNEXT_API_KEY": "bench-key",
        "ERPNEXT_API_SECRET": "bench-secret",
    }


@dataclass
class Bench:
    """What the parts share: the app, an admin token, and notes for the report."""

    app: Any
    token: str
    user_id: Any
    commands: list[str] = field(default_factory=list)

    @property
    def queue(self) -> str:
        return os.environ["CELERY_DEFAULT_QUEUE"]

    def tenants(self, count: int, prefix: str) -> list[str]:
        """`count` new workspaces (one owner for all, so no password hashing per tenant)."""
        from provisioner.extensions import db
        from provisioner.tenancy import create_tenant

        ids: list[str] = []
        with self.app.app_context():
            for i in range(count):
                tenant = create_tenant(
                    {
                        "name": f"{prefix} {RUN_ID} {i} {uuid.uuid4().hex[:6]}",
                        "country_code": "KE",
                        "admin_email": f"owner-{RUN_ID}@example.com",
                        "admin_name": "Owner",
                        "admin_password": "owner-password",
                    }
                )
                ids.append(str(tenant.id))
                if i % 500 == 499:
                    db.session.commit()
            db.session.commit()
        return ids

    def start_runs(self, tenant_ids: list[str], plan: str = "FULL_POS") -> list[str]:
        """Start one run per tenant in-process (published to the default queue)."""
        from provisioner.extensions import db
        from provisioner.models import Tenant
        from provisioner.orchestration import runs

        out: list[str] = []
        with self.app.app_context():
            for tenant_id in tenant_ids:
                tenant = db.session.get(Tenant, uuid.UUID(tenant_id))
                run = runs.start(
                    tenant, runs.StartRequest(plan=plan, steps=None, options={}), "bench"
                )
                out.append(str(run.id))
            db.session.remove()
        return out


def setup() -> Bench:
    """Migrate the scratch database and make an admin with a token."""
    from flask_migrate import upgrade

    from provisioner import create_app
    from provisioner.extensions import db
    from provisioner.security import tokens
    from provisioner.tenancy import create_user

    app = create_app()
    with app.app_context():
        upgrade()
        user = create_user(f"admin-{RUN_ID}@example.com", "admin-password", is_admin=True)
        db.session.commit()
        token, _ttl = tokens.issue(user.id, user.token_version)
        return Bench(app=app, token=token, user_id=user.id)
