"""Secrets at rest (per-tenant engine credentials, webhook secrets), encrypted with Fernet.

ENCRYPTION_KEY holds one or more Fernet keys, comma-separated, the newest first: the first
encrypts, every one decrypts (MultiFernet), so a key is rotated by putting a new one in
front, re-encrypting (`flask --app wsgi secrets reencrypt`) and then dropping the old one.
Without ENCRYPTION_KEY one key is derived from SECRET_KEY (`derived_key`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def keys(config: Mapping[str, Any]) -> list[str]:
    """The configured keys, newest first (or the one derived from SECRET_KEY)."""
    configured = [key.strip() for key in config["ENCRYPTION_KEY"].split(",") if key.strip()]
    return configured or [derived_key(config["SECRET_KEY"])]


def derived_key(secret_key: str) -> str:
    """The key used when ENCRYPTION_KEY is empty; name it there to rotate away from it."""
    digest = hashlib.sha256(b"provisioner-secrets:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def fernet(config: Mapping[str, Any]) -> MultiFernet:
    """Raises ValueError naming ENCRYPTION_KEY when one of its keys is not a Fernet key."""
    try:
        return MultiFernet([Fernet(key) for key in keys(config)])
    except (ValueError, TypeError):
        raise ValueError(
            "ENCRYPTION_KEY must hold Fernet keys (32 url-safe base64-encoded bytes each, "
            "comma-separated); make one with `flask --app wsgi secrets new-key`"
        ) from None


def encrypt(plain: str) -> str:
    return fernet(current_app.config).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet(current_app.config).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("a stored secret cannot be decrypted with the configured keys") from None


def reencrypted(token: str) -> str:
    """The same secret encrypted with the newest key (decrypted with any configured key)."""
    try:
        return fernet(current_app.config).rotate(token.encode()).decode()
    except InvalidToken:
        raise ValueError("a stored secret cannot be decrypted with the configured keys") from None
