"""Who belongs to a workspace: list, add (or change the role of), remove its members.

Owners and admins of the workspace, and platform admins, manage members; only owners and
platform admins grant, change or take away the owner role. A workspace keeps at least one
owner. Every change is audited. The person added must have an account already
(`flask --app wsgi users create`).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, g
from sqlalchemy import func, select

from provisioner import signals
from provisioner.api.access import (
    PLATFORM_ADMIN,
    Need,
    actor,
    authenticated,
    id_or_404,
    load_json,
    not_found,
    tenant_for,
)
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.models import Membership, Role, Tenant, User
from provisioner.orchestration import audit
from provisioner.orchestration.transitions import lock_tenant
from provisioner.schemas.member import MemberAddSchema, MemberListSchema, MemberSchema
from provisioner.tenancy import find_user

bp = Blueprint("members", __name__, url_prefix="/api/v1/tenants/<tenant_id>/members")
MEMBER = "member of this workspace"


@documented(response=MemberListSchema)
@bp.get("")
@authenticated
def index(tenant_id: str):
    """The workspace's members and their roles."""
    tenant = tenant_for(tenant_id, Need.READ)
    rows = db.session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant.id)
        .order_by(Membership.created_at, Membership.id)
    ).all()
    return MemberListSchema().dump({"items": [_member(m, u) for m, u in rows]})


@documented(body=MemberAddSchema, response=MemberSchema)
@bp.post("")
@mutating
@authenticated
def add(tenant_id: str):
    """Add a person to the workspace with a role, or set the role of a member."""
    tenant = _locked(tenant_for(tenant_id, Need.STEER))
    data = load_json(MemberAddSchema())
    user = find_user(data["email"])
    if user is None:
        message = "no account with this email; a platform admin creates it first"
        raise ApiError(422, "validation_error", message, {"email": [message]})
    role = Role(data["role"])
    membership = _membership(tenant, user.id)
    if membership is None:
        _require_owner_power(role == Role.OWNER)
        membership = Membership(user=user, tenant=tenant, role=role)
        db.session.add(membership)
        audit.record(tenant, actor(), "member.add", user.id, email=user.email, role=role)
    else:
        old = Role(membership.role)
        _require_owner_power(Role.OWNER in (old, role))
        if old == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(tenant)
        membership.role = role
        audit.record(tenant, actor(), "member.role", user.id, email=user.email, old=old, new=role)
    db.session.commit()
    return MemberSchema().dump(_member(membership, user))


@documented(status=204)
@bp.delete("/<user_id>")
@mutating
@authenticated
def remove(tenant_id: str, user_id: str):
    """Take a person out of the workspace (their tokens stay, their access goes)."""
    tenant = _locked(tenant_for(tenant_id, Need.STEER))
    membership = _membership(tenant, id_or_404(user_id, MEMBER))
    if membership is None:
        raise not_found(MEMBER)
    if membership.role == Role.OWNER:
        _require_owner_power(True)
        _keep_an_owner(tenant)
    email = membership.user.email
    db.session.delete(membership)
    audit.record(tenant, actor(), "member.remove", membership.user_id, email=email)
    db.session.commit()
    signals.access_revoked.send()
    return "", 204


def _locked(tenant: Tenant) -> Tenant:
    """The tenant row locked: one membership change at a time (the last-owner rule)."""
    return lock_tenant(tenant.id)


def _membership(tenant: Tenant, user_id: uuid.UUID) -> Membership | None:
    return db.session.execute(
        select(Membership).where(Membership.tenant_id == tenant.id, Membership.user_id == user_id)
    ).scalar_one_or_none()


def _require_owner_power(needed: bool) -> None:
    if needed and g.role not in (PLATFORM_ADMIN, Role.OWNER):
        raise ApiError(
            403, "forbidden", "only an owner of this workspace may grant or take the owner role"
        )


def _keep_an_owner(tenant: Tenant) -> None:
    owners = db.session.execute(
        select(func.count())
        .select_from(Membership)
        .where(Membership.tenant_id == tenant.id, Membership.role == Role.OWNER)
    ).scalar_one()
    if owners <= 1:
        db.session.rollback()
        raise Conflict("a workspace keeps at least one owner; make another owner first")


def _member(membership: Membership, user: User) -> dict[str, object]:
    return {
        "user_id": user.id,
        "email": user.email,
        "name": user.name,
        "role": membership.role,
        "created_at": membership.created_at,
    }
