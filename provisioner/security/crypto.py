"""Secrets at rest (per-tenant engine credentials, webhook secrets), encrypted with Fernet."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    key = current_app.config.get("ENCRYPTION_KEY")
    if not key:
        # Derived from SECRET_KEY when no key of its own is configured.
        digest = hashlib.sha256(b"provisioner-secrets:" + current_app.config["SECRET_KEY"].encode())
        key = base64.urlsafe_b64encode(digest.digest()).decode()
    return Fernet(key)


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("a stored secret cannot be decrypted with the configured key") from None
