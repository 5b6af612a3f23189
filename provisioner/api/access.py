"""Who is calling, and what they may do on which workspace."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, Protocol, TypeVar

from flask import g, request
from marshmallow import Schema
from sqlalchemy import select

from provisioner.api import limits
from provisioner.api.errors import ApiError
from provisioner.extensions import db
from provisioner.models import Membership, Role, Tenant, User
from provisioner.security import tokens

F = TypeVar("F", bound=Callable[..., Any])


class Need(StrEnum):
    READ = "read"
    STEER = "steer"  # start, retry, continue, skip, cancel, site jobs, engine, members


STEERING_ROLES = frozenset({Role.OWNER, Role.ADMIN})
PLATFORM_ADMIN = "platform_admin"  # `g.role` of a platform admin


def authenticated(view: F) -> F:
    """Require a valid bearer token of an enabled user at the token's version; the user is
    then `g.user` (the one query of the user row checks all three)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        subject = bearer()
        g.user = admit(subject, db.session.get(User, subject.user_id))
        limits.spend_user(subject.user_id)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Holder(Protocol):
    """What `admit` needs of the token's user: a `User`, or a row of a query that read it."""

    @property
    def disabled(self) -> bool: ...

    @property
    def token_version(self) -> int: ...


H = TypeVar("H", bound=Holder)


def bearer() -> tokens.Subject:
    """Whom the request's bearer token names (401 without a valid, unexpired one)."""
    return subject_of(bearer_token())


def subject_of(token: str) -> tokens.Subject:
    """Whom `token` names (401 unless it is valid and unexpired)."""
    try:
        return tokens.subject(token)
    except tokens.InvalidToken:
        raise _unauthorized("the token is invalid or has expired") from None


def bearer_token() -> str:
    """The request's bearer token as sent (401 without one)."""
    token = token_in(request.headers.get("Authorization", ""))
    if token is None:
        raise _unauthorized("a bearer token is required")
    return token


def token_in(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def admit(subject: tokens.Subject, user: H | None) -> H:
    """The token's user, unless it is gone, disabled or no longer at the token's version
    (401)."""
    if user is None:
        raise _unauthorized("the token's user no longer exists")
    if user.disabled or user.token_version != subject.version:
        raise _unauthorized("the token has been revoked; sign in again")
    return user


def current_user() -> User:
    return g.user


def tenant_for(tenant_id: str, need: Need) -> Tenant:
    """The tenant if the caller may see it (404 otherwise) and do `need` on it (403
    otherwise). The caller's role is then `g.role`; a mutating route spends the
    workspace's rate-limit budget here, once access is established."""
    user = current_user()
    if user.disabled:  # also for stream tickets (api/live.py), which carry no token version
        raise _unauthorized("the account is disabled")
    # The workspace and the caller's role in it, in one query.
    member = (Membership.tenant_id == Tenant.id) & (Membership.user_id == user.id)
    found = db.session.execute(
        select(Tenant, Membership.role)
        .outerjoin(Membership, member)
        .where(Tenant.id == id_or_404(tenant_id, "workspace"))
    ).first()
    if found is None:
        raise _not_found()
    tenant, role = found
    g.role = role_on(user.is_admin, role, need)
    limits.spend_tenant(tenant.id)
    return tenant


def role_on(is_admin: bool, role: str | None, need: Need) -> str:
    """The caller's role on a workspace that exists (`role`: their membership's, if any),
    once it allows `need`: 404 to a stranger (no existence leak), 403 to a reader steering."""
    if is_admin:
        return PLATFORM_ADMIN
    if role is None:
        raise _not_found()
    if need == Need.STEER and role not in STEERING_ROLES:
        raise ApiError(403, "forbidden", f"a {role} of this workspace may only read it")
    return role


def platform_admin() -> User:
    """The caller, if a platform admin (routes that act across workspaces); 403 otherwise."""
    user = current_user()
    if not user.is_admin:
        raise ApiError(403, "forbidden", "only platform admins may do this")
    return user


def may_steer() -> bool:
    """Whether the caller may steer the workspace `tenant_for` last gave (and see its URLs)."""
    return g.get("role") in (PLATFORM_ADMIN, *STEERING_ROLES)


def actor() -> str:
    return current_user().email


def load_json(schema: Schema) -> dict[str, Any]:
    """The request's JSON body validated by `schema` (an empty body counts as {})."""
    if not request.get_data(cache=True):
        raw: Any = {}
    else:
        try:
            raw = request.get_json(silent=True)
        except RecursionError:
            raise ApiError(400, "bad_request", "the body is nested too deeply") from None
        if raw is None:
            raise ApiError(400, "bad_request", "the body is not valid JSON")
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return schema.load(raw)


def load_query(schema: Schema) -> dict[str, Any]:
    return schema.load(request.args.to_dict())


def id_or_404(value: str, what: str) -> uuid.UUID:
    """A UUID from the URL; anything else names nothing: 404 "no such <what>"."""
    found = id_or_none(value)
    if found is None:
        raise not_found(what)
    return found


def id_or_none(value: str) -> uuid.UUID | None:
    """A UUID from the URL, or None for one that is no id (it names nothing)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")


def _not_found() -> ApiError:
    return not_found("workspace")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
