"""Bearer tokens: short-lived JWTs signed with the app's secret key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app

ALGORITHM = "HS256"


class InvalidToken(Exception):
    pass


def issue(user_id: uuid.UUID) -> tuple[str, int]:
    """A token for the user and its lifetime in seconds."""
    ttl = int(current_app.config["TOKEN_TTL_SECONDS"])
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + timedelta(seconds=ttl)}
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM), ttl


def subject(token: str) -> uuid.UUID:
    """The user id a valid, unexpired token was issued for."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
        return uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidToken(str(exc)) from None
