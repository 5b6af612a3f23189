"""Workspaces: create one (and start provisioning it), list them, read one."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from provisioner.api.access import (
    Need,
    actor,
    authenticated,
    current_user,
    load_json,
    load_query,
    tenant_for,
)
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.api.pages import paginate
from provisioner.engine import EngineCredentials
from provisioner.errors import QueueUnavailable
from provisioner.extensions import db
from provisioner.models import AuditEntry, Membership, Tenant
from provisioner.orchestration import audit, engines, runs
from provisioner.schemas.common import PageQuerySchema, page_of
from provisioner.schemas.tenant import (
    AuditEntrySchema,
    EngineConnectionSchema,
    EngineSchema,
    TenantCreatedSchema,
    TenantCreateSchema,
    TenantSchema,
)
from provisioner.tenancy import create_tenant

bp = Blueprint("tenants", __name__, url_prefix="/api/v1/tenants")
TenantPageSchema = page_of(TenantSchema, "TenantPageSchema")
AuditPageSchema = page_of(AuditEntrySchema, "AuditPageSchema")


@documented(body=TenantCreateSchema, response=TenantCreatedSchema, status=201)
@bp.post("")
@mutating
@authenticated
def create():
    """Create a workspace (its owner and membership) and start provisioning it."""
    data = load_json(TenantCreateSchema())
    user = current_user()
    if not user.is_admin and data["admin_email"].lower() != user.email:
        raise ApiError(403, "forbidden", "only a platform admin may create a workspace for others")
    tenant = create_tenant(data)
    audit.record(tenant, actor(), "create", tenant.id, name=tenant.name)
    db.session.commit()
    provisioning, note = None, None
    if data["provision"]:
        try:
            run = runs.start(
                tenant, runs.StartRequest(options={"template": data["category"]}), actor()
            )
            provisioning = run.status_doc
        except QueueUnavailable:
            note = "the task queue is unreachable; start provisioning again shortly"
    body = {"tenant": TenantSchema().dump(tenant), "provisioning": provisioning}
    if note:
        body["provisioning_note"] = note
    return body, 201


@documented(query=PageQuerySchema, response=TenantPageSchema)
@bp.get("")
@authenticated
def index():
    """The workspaces the caller may see."""
    query = load_query(PageQuerySchema())
    user = current_user()
    stmt = select(Tenant)
    if not user.is_admin:
        stmt = stmt.join(Membership).where(Membership.user_id == user.id)
    return TenantPageSchema().dump(paginate(stmt, query, Tenant.created_at.desc(), Tenant.id))


@documented(response=TenantSchema)
@bp.get("/<tenant_id>")
@authenticated
def show(tenant_id: str):
    """One workspace."""
    return TenantSchema().dump(tenant_for(tenant_id, Need.READ))


@documented(response=EngineSchema)
@bp.get("/<tenant_id>/engine")
@authenticated
def engine(tenant_id: str):
    """Which ERPNext site the workspace uses (never its credentials)."""
    return _engine_view(tenant_for(tenant_id, Need.READ))


@documented(body=EngineConnectionSchema, response=EngineSchema)
@bp.put("/<tenant_id>/engine")
@mutating
@authenticated
def set_engine(tenant_id: str):
    """Point the workspace at its own ERPNext site (future runs use it)."""
    tenant = tenant_for(tenant_id, Need.STEER)
    data = load_json(EngineConnectionSchema())
    engines.assign_site(tenant, EngineCredentials(**data))
    audit.record(tenant, actor(), "engine.set", data["url"], site=data["site"])
    db.session.commit()
    return _engine_view(tenant)


@documented(response=EngineSchema)
@bp.delete("/<tenant_id>/engine")
@mutating
@authenticated
def clear_engine(tenant_id: str):
    """Back to the shared default engine."""
    tenant = tenant_for(tenant_id, Need.STEER)
    engines.clear_site(tenant)
    audit.record(tenant, actor(), "engine.clear")
    db.session.commit()
    return _engine_view(tenant)


@documented(query=PageQuerySchema, response=AuditPageSchema)
@bp.get("/<tenant_id>/audit")
@authenticated
def audit_log(tenant_id: str):
    """Who did what to the workspace, newest first."""
    tenant = tenant_for(tenant_id, Need.READ)
    query = load_query(PageQuerySchema())
    stmt = select(AuditEntry).where(AuditEntry.tenant_id == tenant.id)
    return AuditPageSchema().dump(paginate(stmt, query, AuditEntry.id.desc()))


def _engine_view(tenant: Tenant) -> dict:
    return EngineSchema().dump(
        {"own_site": tenant.has_own_site, "url": tenant.engine_url, "site": tenant.engine_site}
    )
