"""A workspace's webhooks and their deliveries; owners and admins of the workspace only."""

from __future__ import annotations

import uuid

from flask import Blueprint
from sqlalchemy import select

from provisioner.api.access import Need, actor, authenticated, load_json, load_query, tenant_for
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.api.pages import paginate
from provisioner.extensions import db
from provisioner.models import WebhookDelivery
from provisioner.orchestration import audit
from provisioner.schemas.common import PageQuerySchema
from provisioner.schemas.webhook import (
    DeliveryPageSchema,
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookListSchema,
)
from provisioner.webhooks import registry

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/tenants/<tenant_id>/webhooks")


@documented(body=WebhookCreateSchema, response=WebhookCreatedSchema, status=201)
@bp.post("")
@mutating
@authenticated
def create(tenant_id: str):
    """Register a webhook; the answer holds its signing secret, shown this once."""
    tenant = tenant_for(tenant_id, Need.STEER)
    data = load_json(WebhookCreateSchema())
    webhook, secret = registry.add(tenant, data["url"], actor())
    audit.record(tenant, actor(), "webhook_create", webhook.id, url=webhook.url)
    db.session.commit()
    return WebhookCreatedSchema().dump({**_fields(webhook), "secret": secret}), 201


@documented(response=WebhookListSchema)
@bp.get("")
@authenticated
def index(tenant_id: str):
    """The workspace's webhooks (never their secrets)."""
    tenant = tenant_for(tenant_id, Need.STEER)
    return WebhookListSchema().dump({"items": registry.of(tenant)})


@documented(status=204)
@bp.delete("/<webhook_id>")
@mutating
@authenticated
def delete(tenant_id: str, webhook_id: str):
    """Remove a webhook and its deliveries."""
    tenant = tenant_for(tenant_id, Need.STEER)
    if not registry.remove(tenant, _uuid(webhook_id)):
        raise ApiError(404, "not_found", "no such webhook")
    audit.record(tenant, actor(), "webhook_delete", webhook_id)
    db.session.commit()
    return "", 204


@documented(query=PageQuerySchema, response=DeliveryPageSchema)
@bp.get("/deliveries")
@authenticated
def deliveries(tenant_id: str):
    """Deliveries to the workspace's webhooks, newest first, with each attempt's outcome."""
    tenant = tenant_for(tenant_id, Need.STEER)
    query = load_query(PageQuerySchema())
    stmt = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant.id)
    return DeliveryPageSchema().dump(paginate(stmt, query, WebhookDelivery.created_at.desc()))


def _fields(webhook: object) -> dict[str, object]:
    return {k: getattr(webhook, k) for k in ("id", "url", "created_by", "created_at")}


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, "not_found", "no such webhook") from None
