"""Rate limits, counted only once the caller is known (the `limits` library, kept in Redis).

- Mutating routes (`@mutating`): one budget per user (RATE_LIMIT_PER_USER), spent when the
  bearer token has been checked, and one per workspace (RATE_LIMIT_PER_TENANT), spent when
  access to the workspace has been checked (`access.tenant_for`) and keyed on its canonical
  id: the same budget across every route and both URL prefixes, however the id is spelled,
  and out of reach of anyone who may not steer the workspace.
- Failed sign-ins (`api/auth.py`): per account and per client address
  (LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS); a bearer header changes nothing.
- Bulk continues (`api/recovery.py`): per platform admin (BULK_CONTINUE_RATE_LIMIT), spent
  once the request is valid, on top of the mutating budget.

A spent budget answers 429 with `Retry-After`. If the counters' store is down, counting
goes on per process for a while rather than refusing every call. The client address is
the peer's, or, with PROXY_FIX_HOPS trusted proxies in front, the one they forwarded.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from provisioner.api.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)
FALLBACK_SECONDS = 30.0  # how long counting stays per process after the store failed


class Budgets:
    """Named budgets in the configured store, with a per-process fallback."""

    def __init__(self, storage_uri: str, prefix: str) -> None:
        self.prefix = prefix
        storage = storage_from_string(storage_uri, wrap_exceptions=True)
        self._store = MovingWindowRateLimiter(storage)
        base = storage.base_exceptions  # not every call of a storage wraps its errors
        self._store_errors: tuple[type[Exception], ...] = (
            StorageError,
            *(base if isinstance(base, tuple) else (base,)),
        )
        self._fallback = MovingWindowRateLimiter(MemoryStorage())
        self._fallback_until = 0.0

    def spend(self, limit: str, *key: str) -> None:
        """Take one from the budget; 429 if it is spent."""
        item = parse(limit)
        if not self._call("hit", item, key):
            raise _too_many(self, item, key)

    def check(self, limit: str, *key: str) -> None:
        """429 if the budget is spent, without taking from it."""
        item = parse(limit)
        if not self._call("test", item, key):
            raise _too_many(self, item, key)

    def retry_after(self, item: RateLimitItem, key: tuple[str, ...]) -> int:
        stats = self._call("get_window_stats", item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _call(self, method: str, item: RateLimitItem, key: tuple[str, ...]) -> Any:
        strategy = self._store if time.monotonic() >= self._fallback_until else self._fallback
        try:
            return getattr(strategy, method)(item, self.prefix, *key)
        except self._store_errors as exc:
            log.warning("rate limit store unavailable, counting per process: %s", exc)
            self._fallback_until = time.monotonic() + FALLBACK_SECONDS
            return getattr(self._fallback, method)(item, self.prefix, *key)


def init_app(app: Flask) -> None:
    app.extensions["budgets"] = Budgets(
        app.config["RATELIMIT_STORAGE_URI"], app.config["RATELIMIT_KEY_PREFIX"]
    )
    hops = int(app.config["PROXY_FIX_HOPS"])
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def budgets() -> Budgets:
    return cast(Budgets, current_app.extensions["budgets"])


def client_address() -> str:
    return request.remote_addr or "unknown"


def mutating(view: F) -> F:
    """Mark a mutating route: its caller's and its workspace's budgets are spent once they
    are known (whichever order this and `authenticated` are stacked in)."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        state = _state()
        state["limited"] = True
        if "user" in state:
            _spend(state, "user", current_app.config["RATE_LIMIT_PER_USER"])
        return view(*args, **kwargs)

    return cast(F, limited)


def spend_user(user_id: object) -> None:
    """The signed-in caller's budget (called by `access.authenticated`)."""
    state = _state()
    state["user"] = str(user_id)
    if state.get("limited"):
        _spend(state, "user", current_app.config["RATE_LIMIT_PER_USER"])


def spend_tenant(tenant_id: object) -> None:
    """The workspace's budget, by its canonical id (called by `access.tenant_for`)."""
    state = _state()
    state["tenant"] = str(tenant_id)
    if state.get("limited"):
        _spend(state, "tenant", current_app.config["RATE_LIMIT_PER_TENANT"])


def spend_bulk(user_id: object) -> None:
    """One bulk continue of the caller's budget (BULK_CONTINUE_RATE_LIMIT)."""
    budgets().spend(current_app.config["BULK_CONTINUE_RATE_LIMIT"], "bulk", str(user_id))


def _state() -> dict[str, Any]:
    """What this request has spent (kept on the request: `g` may outlive one)."""
    return cast(dict[str, Any], request.environ.setdefault("provisioner.limits", {}))


def _spend(state: dict[str, Any], kind: str, limit: str) -> None:
    if not state.get(f"{kind}_spent"):
        state[f"{kind}_spent"] = True
        budgets().spend(limit, kind, state[kind])


def _too_many(store: Budgets, item: RateLimitItem, key: tuple[str, ...]) -> ApiError:
    wait = store.retry_after(item, key)
    return ApiError(
        429,
        "too_many_requests",
        f"too many requests ({item}); try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )
