"""Build what a step is given (`StepContext`) from what the database says about its run."""

from __future__ import annotations

from typing import Any

from flask import current_app

from provisioner import catalog
from provisioner.extensions import db
from provisioner.models import Tenant
from provisioner.orchestration import engines
from provisioner.orchestration.execution import Claim
from provisioner.orchestration.locks import site_locks
from provisioner.orchestration.runs import run_options
from provisioner.steps.base import StepContext, TenantProfile


def tenant_profile(tenant: Tenant) -> TenantProfile:
    country = catalog.countries()[tenant.country_code]
    return TenantProfile(
        name=tenant.name,
        slug=tenant.slug,
        country_code=tenant.country_code,
        country=country.name,
        currency=tenant.currency,
        timezone=country.timezone,
        wanted_chart=country.chart,
        shared_site=not tenant.has_own_site,
    )


def build(claim: Claim) -> StepContext:
    tenant = claim.tenant
    if tenant is None:
        raise ValueError("only a claim to run a step builds a step context")
    return for_tenant(tenant, claim.options, claim.metadata)


def for_tenant(
    tenant: Tenant,
    options: dict[str, Any],
    metadata: dict[str, Any],
) -> StepContext:
    """The context of the tenant's steps, from a run's options and metadata."""
    cfg = current_app.config
    credentials = engines.credentials_for(tenant)
    return StepContext(
        engine=engines.client_for(credentials),
        tenant=tenant_profile(tenant),
        options=run_options(options),
        template=catalog.template_for(options.get("template") or tenant.category),
        metadata=metadata,
        lock=site_locks(db.engine, credentials.site_key, cfg["SITE_LOCK_TIMEOUT"], cfg["LOCK_DIR"]),
        health_ttl=cfg["ENGINE_HEALTH_TTL"],
    )
