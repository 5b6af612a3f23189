"""Site lifecycle on the engine: create, delete and back up a tenant's own ERPNext site.

One module per backend behind `SiteBackend`; SITE_BACKEND picks one (`simulator`, `bench`).
"""

from __future__ import annotations

from flask import current_app

from provisioner.sites.base import (
    JobCancelled,
    JobContext,
    PermanentSiteError,
    SiteBackend,
    SiteBackup,
    SiteCreated,
    SiteDeleted,
    SiteJobError,
    SiteOutcome,
    SiteTaken,
    TransientSiteError,
)

BACKENDS = ("simulator", "bench")

__all__ = [
    "BACKENDS",
    "JobCancelled",
    "JobContext",
    "PermanentSiteError",
    "SiteBackend",
    "SiteBackup",
    "SiteCreated",
    "SiteDeleted",
    "SiteJobError",
    "SiteOutcome",
    "SiteTaken",
    "TransientSiteError",
    "backend",
    "site_name",
]


def backend() -> SiteBackend:
    """The configured backend (inside the app context)."""
    config = current_app.config
    if config["SITE_BACKEND"] == "bench":
        from provisioner.sites.bench import BenchBackend, settings_from

        return BenchBackend(settings_from(config))
    if config["SITE_BACKEND"] == "simulator":
        from provisioner.sites.simulator import SimulatorBackend

        return SimulatorBackend(config["ERPNEXT_URL"], config["ENGINE_CONNECT_TIMEOUT"])
    raise PermanentSiteError(
        f"SITE_BACKEND is {config['SITE_BACKEND']!r}; it must be one of {', '.join(BACKENDS)}"
    )


def site_name(slug: str) -> str:
    """The name of a tenant's own site: <slug>.<SITE_DOMAIN>, served by Host header."""
    return f"{slug}.{current_app.config['SITE_DOMAIN']}"
