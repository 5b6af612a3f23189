"""Workspaces: create one (and start provisioning it), list them, read one.

Creation is also served in the page's dialect at `/iam/tenants` and `/api/iam/tenants`
(`page_blueprint`), where the provisioning status it answers names the page's steps.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import select

from provisioner.api.access import (
    Need,
    actor,
    authenticated,
    current_user,
    load_json,
    load_query,
    may_steer,
    tenant_for,
)
from provisioner.api.dialects import speaking
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.api.pages import paginate
from provisioner.engine import EngineClient, EngineCredentials
from provisioner.engine.errors import (
    EngineError,
    EngineTimeout,
    EngineUnreachable,
    TransientEngineError,
)
from provisioner.engine.health import health_cache
from provisioner.errors import QueueUnavailable
from provisioner.extensions import db
from provisioner.models import AuditEntry, Membership, Tenant
from provisioner.orchestration import audit, engines, runs
from provisioner.schemas import dialects
from provisioner.schemas.common import PageQuerySchema, page_of
from provisioner.schemas.dialects import Dialect
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


WAITING = (
    "the engine is offline ({reason}); the workspace waits: start provisioning "
    "(POST …/tenants/<id>/start) once the engine answers again"
)


def page_blueprint(name: str, prefix: str) -> Blueprint:
    """Workspace creation as the platform's page calls it (`POST <prefix>/tenants`)."""
    page = Blueprint(name, __name__, url_prefix=prefix)
    page.add_url_rule("/tenants", view_func=speaking(Dialect.PAGE, create), methods=["POST"])
    return page


@documented(body=TenantCreateSchema, response=TenantCreatedSchema, status=201)
@mutating
@authenticated
def create(dialect: Dialect):
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
        provisioning, note = _provision(tenant, data["category"])
    body: dict[str, Any] = {
        "tenant": TenantSchema().dump(tenant),
        "provisioning": provisioning and dialects.status_document(provisioning, dialect),
    }
    if note:
        body["provisioning_note"] = note
    return body, 201


bp.add_url_rule("", view_func=speaking(Dialect.PROVISIONER, create), methods=["POST"])


def _provision(tenant: Tenant, template: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Start FULL_POS for a new workspace: its status document, or why it waits."""
    offline = _engine_offline(tenant)
    if offline:
        return None, WAITING.format(reason=offline)
    try:
        run = runs.start(tenant, runs.StartRequest(options={"template": template}), actor())
    except QueueUnavailable:
        return None, "the task queue is unreachable; start provisioning again shortly"
    return run.status_doc, None


def _engine_offline(tenant: Tenant) -> str | None:
    """Why the workspace's engine cannot take work now, or None when it can.

    Offline means the engine health check (the one the check_engine step makes, cached for
    ENGINE_HEALTH_TTL) gets no answer within ENGINE_PROBE_TIMEOUT seconds, or an answer that
    says "busy" (429, 502-504). An engine that answers but refuses (wrong key, no
    permission) is not offline: the run's first step fails and says why.
    """
    timeout = current_app.config["ENGINE_PROBE_TIMEOUT"]
    client = EngineClient(
        engines.credentials_for(tenant), connect_timeout=timeout, read_timeout=timeout
    )
    try:
        health_cache.check(client, current_app.config["ENGINE_HEALTH_TTL"])
    except EngineTimeout:
        return f"no answer within {timeout:g} s"
    except EngineUnreachable:
        return "it cannot be reached"
    except TransientEngineError as exc:  # in our words: the engine's own text is not trusted
        return f"it answered {exc.status}" if exc.status else "it is busy"
    except (EngineError, ValueError):
        return None
    return None


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
    """Which ERPNext site the workspace uses (never its credentials; members see no URL)."""
    return _engine_view(tenant_for(tenant_id, Need.READ))


@documented(body=EngineConnectionSchema, response=EngineSchema)
@bp.put("/<tenant_id>/engine")
@mutating
@authenticated
def set_engine(tenant_id: str):
    """Point the workspace at its own ERPNext site (future runs use it).

    Owners pick one of the platform's engines; only platform admins may name another. No
    one may name the shared site or another workspace's site (docs/SECURITY.md)."""
    tenant = tenant_for(tenant_id, Need.STEER)
    data = load_json(EngineConnectionSchema())
    credentials = EngineCredentials(**data)
    engines.check_choice(tenant, credentials, platform_admin=current_user().is_admin)
    engines.assign_site(tenant, credentials)
    audit.record(tenant, actor(), "engine.set", url=data["url"], site=data["site"])
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
    """Who did what to the workspace, newest first (members see no URLs in it)."""
    tenant = tenant_for(tenant_id, Need.READ)
    query = load_query(PageQuerySchema())
    stmt = select(AuditEntry).where(AuditEntry.tenant_id == tenant.id)
    page = AuditPageSchema().dump(paginate(stmt, query, AuditEntry.id.desc()))
    if not may_steer():
        page["items"] = [_without_urls(entry) for entry in page["items"]]
    return page


def _engine_view(tenant: Tenant) -> dict:
    url = tenant.engine_url if may_steer() else None
    return EngineSchema().dump(
        {"own_site": tenant.has_own_site, "url": url, "site": tenant.engine_site}
    )


def _without_urls(entry: dict) -> dict:
    """An audit entry as a read-only member sees it: no URL anywhere in it."""
    details = {k: v for k, v in (entry.get("details") or {}).items() if not _url_like(k, v)}
    target = None if _url_like("target", entry.get("target")) else entry.get("target")
    return {**entry, "target": target, "details": details or None}


def _url_like(key: str, value: object) -> bool:
    return "url" in key.lower() or (isinstance(value, str) and "://" in value)
