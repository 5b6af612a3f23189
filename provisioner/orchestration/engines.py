"""Which engine site a tenant's steps talk to: its own site, or the shared default; and
which engines a workspace may be pointed at (docs/SECURITY.md, "Engines")."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app

from provisioner.engine import EngineClient, EngineCredentials
from provisioner.errors import Conflict
from provisioner.models import Tenant
from provisioner.security import urls
from provisioner.security.crypto import decrypt, encrypt
from provisioner.sites import registry


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


def site_name(credentials: EngineCredentials) -> str:
    """The name of an engine site: the site asked for by `Host`, else the URL's host, in
    lowercase (what the site registry and `check_choice` compare)."""
    return (credentials.site or urlsplit(credentials.url).hostname or "").lower()


def site_of(tenant: Tenant) -> str:
    """The name of the engine site the tenant's steps talk to (its own, else the shared
    one), without decrypting its key."""
    if not tenant.has_own_site:
        return site_name(default_credentials())
    return site_name(EngineCredentials(tenant.engine_url or "", "", "", tenant.engine_site))


def check_choice(tenant: Tenant, credentials: EngineCredentials, *, platform_admin: bool) -> None:
    """Refuse an engine the caller may not point the workspace at.

    Workspace owners pick only the platform's engines (its engine hosts and
    ENGINE_ALLOWED_HOSTS); platform admins may also name any other engine whose addresses
    are public (or in OUTBOUND_ALLOWED_NETWORKS). Nobody may name the shared site (on the
    shared engine's server) or a site registered to another workspace; owners not another
    workspace's engine site either.
    Raises UrlRefused (422) or Conflict (409)."""
    target = urls.parse(credentials.url)
    if not is_platform_engine(target):
        if not platform_admin:
            raise urls.UrlRefused(
                "a workspace owner may only pick one of the platform's engines "
                f"({', '.join(platform_engines()) or 'none are configured'}); "
                "ask a platform admin for any other"
            )
        urls.guard(current_app.config).check(target)
    site = site_name(credentials)
    shared_server = urls.matches(target, engine_servers())  # where the shared site lives
    reason = registry.taken(
        site, tenant.id, configured_too=not platform_admin, shared_too=shared_server
    )
    if reason:
        raise Conflict(f"{reason}; point the workspace at a site of its own", site=site)


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
    """A client for the site; its connections are guarded unless it is a platform engine."""
    cfg = current_app.config
    try:
        trusted = is_platform_engine(urls.parse(credentials.url))
    except urls.UrlRefused:
        trusted = False  # stored before the policy existed: the guard decides at call time
    return EngineClient(
        credentials,
        connect_timeout=cfg["ENGINE_CONNECT_TIMEOUT"],
        read_timeout=cfg["ENGINE_READ_TIMEOUT"],
        guard=None if trusted else urls.guard(cfg),
    )


def engine_servers() -> tuple[str, ...]:
    """host:port of the default engine (ERPNEXT_URL) and of the bench host's sites."""
    cfg = current_app.config
    own = []
    for url in (cfg["ERPNEXT_URL"], cfg["BENCH_SITE_URL"]):
        if url:
            target = urls.parse(url, "ERPNEXT_URL")
            host = f"[{target.host}]" if ":" in target.host else target.host
            own.append(f"{host}:{target.port}")
    return tuple(dict.fromkeys(own))


def platform_engines() -> tuple[str, ...]:
    """The engines the platform configured: its engine servers and ENGINE_ALLOWED_HOSTS."""
    return (*engine_servers(), *current_app.config["ENGINE_ALLOWED_HOSTS"])


def is_platform_engine(target: urls.Target) -> bool:
    return urls.matches(target, platform_engines())
