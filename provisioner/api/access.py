"""Who is calling, and what they may do on which workspace."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from marshmallow import Schema
from sqlalchemy import select

from provisioner.api.errors import ApiError
from provisioner.extensions import db
from provisioner.models import Membership, Role, Tenant, User
from provisioner.security import tokens

F = TypeVar("F", bound=Callable[..., Any])


class Need(StrEnum):
    READ = "read"
    STEER = "steer"  # start, retry, continue, skip, cancel, site jobs


STEERING_ROLES = frozenset({Role.OWNER, Role.ADMIN})


def authenticated(view: F) -> F:
    """Require a valid bearer token; the user is then `g.user`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("a bearer token is required")
        try:
            user_id = tokens.subject(token.strip())
        except tokens.InvalidToken:
            raise _unauthorized("the token is invalid or has expired") from None
        user = db.session.get(User, user_id)
        if user is None:
            raise _unauthorized("the token's user no longer exists")
        g.user = user
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_user() -> User:
    return g.user


def tenant_for(tenant_id: str, need: Need) -> Tenant:
    """The tenant if the caller may see it (404 otherwise) and do `need` on it (403 otherwise)."""
    user = current_user()
    tenant = db.session.get(Tenant, _uuid(tenant_id))
    if tenant is None:
        raise _not_found()
    if user.is_admin:
        return tenant
    role = db.session.execute(
        select(Membership.role).where(
            Membership.user_id == user.id, Membership.tenant_id == tenant.id
        )
    ).scalar_one_or_none()
    if role is None:
        raise _not_found()  # no existence leak
    if need == Need.STEER and role not in STEERING_ROLES:
        raise ApiError(403, "forbidden", f"a {role} of this workspace may only read it")
    return tenant


def actor() -> str:
    return current_user().email


def load_json(schema: Schema) -> dict[str, Any]:
    """The request's JSON body validated by `schema` (an empty body counts as {})."""
    if not request.get_data(cache=True):
        raw: Any = {}
    else:
        raw = request.get_json(silent=True)
        if raw is None:
            raise ApiError(400, "bad_request", "the body is not valid JSON")
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return schema.load(raw)


def load_query(schema: Schema) -> dict[str, Any]:
    return schema.load(request.args.to_dict())


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _not_found() from None


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no such workspace")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
