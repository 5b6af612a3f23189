"""Creating users and tenants (a tenant, its owner and membership)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from provisioner import catalog
from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.models import Membership, Role, Tenant, User


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80]


def find_user(email: str) -> User | None:
    return db.session.execute(
        select(User).where(func.lower(User.email) == email.lower())
    ).scalar_one_or_none()


def create_user(email: str, password: str, *, name: str = "", is_admin: bool = False) -> User:
    if find_user(email) is not None:
        raise Conflict(f"a user with email {email} exists already")
    user = User(email=email.lower(), name=name, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    return user


def create_tenant(data: dict[str, Any]) -> Tenant:
    """The tenant, its owner (made if new) and the owner's membership; flushed, not committed."""
    slug = slugify(data["name"])
    if db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first():
        raise Conflict(f"a workspace named like {data['name']!r} exists already", slug=slug)
    owner = find_user(data["admin_email"]) or create_user(
        data["admin_email"], data["admin_password"], name=data["admin_name"]
    )
    country = catalog.countries()[data["country_code"]]
    tenant = Tenant(
        name=data["name"],
        slug=slug,
        country_code=data["country_code"],
        currency=data.get("currency") or country.currency,
        category=data.get("category"),
    )
    tenant.memberships.append(Membership(user=owner, role=Role.OWNER))
    db.session.add(tenant)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"a workspace named like {data['name']!r} exists already") from None
    return tenant
