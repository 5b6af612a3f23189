"""Bearer tokens: short-lived JWTs signed with the app's secret key.

A token carries its user's token version (`ver`): disabling the user or changing their
password bumps the version, and every token issued before stops working at once (checked
against the user row that authentication loads anyway).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from flask import current_app

ALGORITHM = "HS256"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Subject:
    user_id: uuid.UUID
    version: int


def issue(user_id: uuid.UUID, version: int) -> tuple[str, int]:
    """A token for the user (at their current token version) and its lifetime in seconds."""
    ttl = int(current_app.config["TOKEN_TTL_SECONDS"])
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "ver": version, "iat": now, "exp": now + timedelta(seconds=ttl)}
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM), ttl


def subject(token: str) -> Subject:
    """Whom a valid, unexpired token was issued for, and at which token version."""
    found, expires = _verified(token, current_app.config["SECRET_KEY"])
    if expires <= time.time():
        raise InvalidToken("Signature has expired")
    return found


def expires_at(token: str) -> float:
    """When a token that `subject` accepted expires (Unix time)."""
    return _verified(token, current_app.config["SECRET_KEY"])[1]


@lru_cache(maxsize=4096)
def _verified(token: str, secret: str) -> tuple[Subject, float]:
    """The subject and expiry of a token whose signature and claims checked out, kept per
    process by token and key: a poller's token is verified once, not on every read. An
    invalid token raises and is never kept; expiry is checked on every use."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "ver", "exp"]}
        )
        version = claims["ver"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("the token version is not a number")
        return Subject(uuid.UUID(claims["sub"]), version), float(claims["exp"])
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from None


# Stream tickets: what EventSource (which sends no headers) opens a workspace's live stream
# with. Issued by the API after it checked the caller may read the workspace; checked by the
# live process without a database. Harmless in an access log: one workspace, one minute.
TICKET_AUDIENCE = "provisioner:events"
TICKET_TTL_SECONDS = 60


def stream_ticket(secret: str, user_id: uuid.UUID, tenant_id: uuid.UUID) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "aud": TICKET_AUDIENCE,
        "tenant": str(tenant_id),
        "iat": now,
        "exp": now + timedelta(seconds=TICKET_TTL_SECONDS),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def stream_ticket_user(secret: str, ticket: str, tenant_id: uuid.UUID) -> str:
    """The user id of a valid, unexpired ticket for this workspace; InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            ticket,
            secret,
            algorithms=[ALGORITHM],
            audience=TICKET_AUDIENCE,
            options={"require": ["sub", "aud", "tenant", "exp"]},
        )
        if uuid.UUID(str(claims["tenant"])) != tenant_id:
            raise ValueError("a ticket of another workspace")
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidToken(str(exc)) from None
    return str(claims["sub"])
