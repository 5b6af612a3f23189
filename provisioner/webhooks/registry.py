"""A workspace's webhooks: add one (its secret made here and shown once), list, remove.

A webhook URL passes the outbound URL policy (security/urls.py) when it is added, and its
every delivery connects only to addresses the policy permits (`deliveries`).
"""

from __future__ import annotations

import secrets
import uuid

from flask import current_app
from sqlalchemy import func, select

from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.models import Tenant, Webhook
from provisioner.security import crypto, urls

MAX_PER_TENANT = 10


def add(tenant: Tenant, url: str, actor: str) -> tuple[Webhook, str]:
    """A new webhook and its signing secret, in clear for the one answer that shows it.
    Raises UrlRefused when the URL breaks the outbound policy."""
    urls.guard(current_app.config).check(urls.parse(url))
    count = db.session.execute(
        select(func.count()).select_from(Webhook).where(Webhook.tenant_id == tenant.id)
    ).scalar_one()
    if count >= MAX_PER_TENANT:
        raise Conflict(f"a workspace has at most {MAX_PER_TENANT} webhooks", count=count)
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook = Webhook(
        tenant_id=tenant.id, url=url, secret_enc=crypto.encrypt(secret), created_by=actor
    )
    db.session.add(webhook)
    db.session.flush()
    return webhook, secret


def of(tenant: Tenant) -> list[Webhook]:
    return list(
        db.session.execute(
            select(Webhook).where(Webhook.tenant_id == tenant.id).order_by(Webhook.created_at)
        ).scalars()
    )


def remove(tenant: Tenant, webhook_id: uuid.UUID) -> bool:
    """Delete the webhook (and its deliveries); False when the workspace has no such webhook."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None or webhook.tenant_id != tenant.id:
        return False
    db.session.delete(webhook)
    return True
