"""Settings the service refuses to start without: checked by the app factory, so the web
processes, the workers, beat, Flower and the CLI all refuse alike, with a message that
names the variable. The demo and the test suite set their own SECRET_KEY."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from limits import parse_many

from provisioner.security import crypto, urls

MIN_SECRET_KEY = 32
# The default earlier versions started with; tokens signed with it are forgeable by anyone.
PUBLISHED_DEFAULT = "dev-only-secret-change-me"
LIMITS = (
    "RATE_LIMIT_PER_USER",
    "RATE_LIMIT_PER_TENANT",
    "LOGIN_FAILURES_PER_ACCOUNT",
    "LOGIN_FAILURES_PER_ADDRESS",
    "BULK_CONTINUE_RATE_LIMIT",
)


class InsecureSettings(RuntimeError):
    """The configuration would run the service unsafely (or not at all)."""


def check(config: Mapping[str, Any]) -> None:
    secret = config.get("SECRET_KEY") or ""
    if not secret:
        raise InsecureSettings(
            "SECRET_KEY is not set. It signs every access token, so the service does not "
            "start without one. Set it to a long random value, e.g. "
            "export SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if secret == PUBLISHED_DEFAULT or len(secret) < MIN_SECRET_KEY:
        raise InsecureSettings(
            f"SECRET_KEY is too weak: use at least {MIN_SECRET_KEY} random characters "
            "(not the published development default)"
        )
    try:
        crypto.fernet(config)
    except ValueError as exc:
        raise InsecureSettings(str(exc)) from None
    try:
        urls.networks(tuple(config["OUTBOUND_ALLOWED_NETWORKS"]))
    except ValueError as exc:
        raise InsecureSettings(
            f"OUTBOUND_ALLOWED_NETWORKS is not a list of networks: {exc}"
        ) from None
    for name in LIMITS:
        try:
            parse_many(config[name])
        except ValueError:
            raise InsecureSettings(
                f"{name} is not a rate limit like '30/minute': {config[name]!r}"
            ) from None
    if int(config["PROXY_FIX_HOPS"]) < 0:
        raise InsecureSettings("PROXY_FIX_HOPS must be 0 or more")
