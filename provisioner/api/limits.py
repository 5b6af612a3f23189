"""Rate limits on mutating routes, per user and per workspace (Redis-backed in production).

Limits are checked before the view runs, so the keys come from the request itself: the
bearer token's subject (or the client address without one) and the `tenant_id` in the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from provisioner.security import tokens

F = TypeVar("F", bound=Callable[..., Any])


def user_key() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return f"user:{tokens.subject(token.strip())}"
        except tokens.InvalidToken:
            pass
    return f"addr:{get_remote_address()}"


def tenant_key() -> str:
    return f"tenant:{(request.view_args or {}).get('tenant_id') or request.path}"


limiter = Limiter(key_func=user_key, headers_enabled=True, strategy="moving-window")


def init_app(app: Flask) -> None:
    limiter.init_app(app)


def _per_user() -> str:
    return current_app.config["RATE_LIMIT_PER_USER"]


def _per_tenant() -> str:
    return current_app.config["RATE_LIMIT_PER_TENANT"]


def mutating(view: F) -> F:
    """Limit a mutating route per user and, when the URL names one, per workspace."""
    limited = limiter.limit(_per_user, key_func=user_key, scope="user")(view)
    per_tenant = limiter.limit(
        _per_tenant,
        key_func=tenant_key,
        scope="tenant",
        exempt_when=lambda: "tenant_id" not in (request.view_args or {}),
    )
    return cast(F, per_tenant(limited))
