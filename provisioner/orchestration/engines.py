"""Which engine site a tenant's steps talk to: its own site, or the shared default."""

from __future__ import annotations

from flask import current_app

from provisioner.engine import EngineClient, EngineCredentials
from provisioner.models import Tenant
from provisioner.security.crypto import decrypt, encrypt


def default_credentials() -> EngineCredentials:
    """The shared site from the environment (ERPNEXT_URL, ERPNEXT_API_KEY/SECRET, ERPNEXT_SITE)."""
    cfg = current_app.config
    return EngineCredentials(
        url=cfg["ERPNEXT_URL"],
        api_key=cfg["ERPNEXT_API_KEY"],
        api_secret=cfg["ERPNEXT_API_SECRET"],
        site=cfg["ERPNEXT_SITE"],
    )


def credentials_for(tenant: Tenant) -> EngineCredentials:
    if not tenant.has_own_site:
        return default_credentials()
    return EngineCredentials(
        url=tenant.engine_url or "",
        api_key=decrypt(tenant.engine_api_key_enc or ""),
        api_secret=decrypt(tenant.engine_api_secret_enc or ""),
        site=tenant.engine_site,
    )


def assign_site(tenant: Tenant, credentials: EngineCredentials) -> None:
    """Point the tenant at a site of its own; the key and secret are stored encrypted."""
    tenant.engine_url = credentials.url
    tenant.engine_site = credentials.site
    tenant.engine_api_key_enc = encrypt(credentials.api_key)
    tenant.engine_api_secret_enc = encrypt(credentials.api_secret)


def clear_site(tenant: Tenant) -> None:
    tenant.engine_url = tenant.engine_site = None
    tenant.engine_api_key_enc = tenant.engine_api_secret_enc = None


def client_for(credentials: EngineCredentials) -> EngineClient:
    cfg = current_app.config
    return EngineClient(
        credentials,
        connect_timeout=cfg["ENGINE_CONNECT_TIMEOUT"],
        read_timeout=cfg["ENGINE_READ_TIMEOUT"],
    )
