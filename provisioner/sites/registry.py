"""The site registry (`models.Site`): which engine sites this service made, for whom.

Names are handed out here: a workspace's site name may not be the shared engine's site,
any workspace's configured engine site, or a site registered to another workspace. Site
jobs find their site here, never in a free-text field.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.models import Site, SiteJob, SiteState, Tenant
from provisioner.models.site import REGISTERED
from provisioner.models.types import utcnow


def reserved_names() -> set[str]:
    """The default engine's site names: ERPNEXT_SITE and the hosts of the engine URLs."""
    cfg = current_app.config
    urls = (cfg["ERPNEXT_URL"], cfg["BENCH_SITE_URL"] or "")
    names = {cfg["ERPNEXT_SITE"] or "", *((urlsplit(url).hostname or "") for url in urls)}
    return {name.lower() for name in names if name}


def taken(
    name: str, tenant_id: uuid.UUID, *, configured_too: bool = True, shared_too: bool = True
) -> str | None:
    """Why `name` cannot be this tenant's site (None: it can). `configured_too`: also when
    another workspace's engine is set to that site; `shared_too`: also when it is one of the
    shared engine's names."""
    name = name.lower()
    if shared_too and name in reserved_names():
        return f"site {name} is the shared engine's site; it belongs to no workspace"
    owner = db.session.execute(select(Site.tenant_id).where(Site.name == name)).scalar()
    if owner is not None and owner != tenant_id:
        return f"site {name} is registered to another workspace"
    if configured_too:
        other = db.session.execute(
            select(Tenant.id).where(Tenant.engine_site == name, Tenant.id != tenant_id).limit(1)
        ).scalar()
        if other is not None:
            return f"site {name} is the engine site of another workspace"
    return None


def intend(tenant: Tenant, name: str, job: SiteJob) -> Site:
    """Record (in the caller's transaction) that `job` is to make site `name` for `tenant`."""
    reason = taken(name, tenant.id)
    if reason:
        raise Conflict(reason, site=name)
    site = db.session.execute(
        select(Site).where(Site.name == name).with_for_update()
    ).scalar_one_or_none()
    if site is None:
        site = Site(name=name, tenant_id=tenant.id, state=SiteState.CREATING)
        db.session.add(site)
    elif site.state == SiteState.DELETED:
        # It was dropped: whatever has this name on the engine now, this service did not make.
        site.creation_started_at, site.deleted_at = None, None
    if site.state != SiteState.ACTIVE:  # a retried, completed create_site keeps its site
        site.state = SiteState.CREATING
    site.job_id = job.id
    return site


def withdraw(job_id: uuid.UUID) -> None:
    """The job was never published: its intent goes (a creation begun earlier stays known)."""
    site = of_job(job_id)
    if site is None or site.state != SiteState.CREATING:
        return
    if site.creation_started_at is None:
        db.session.delete(site)
    else:
        site.state = SiteState.FAILED


def registered(tenant_id: uuid.UUID, states: tuple[SiteState, ...] = REGISTERED) -> Site | None:
    """The tenant's site in one of `states` (by default: made, and not dropped)."""
    return db.session.execute(
        select(Site)
        .where(Site.tenant_id == tenant_id, Site.state.in_(states))
        .order_by(Site.updated_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def of_job(job_id: uuid.UUID) -> Site | None:
    """The site a create_site job makes (or made)."""
    return db.session.execute(select(Site).where(Site.job_id == job_id)).scalar_one_or_none()


def creation_started(job_id: uuid.UUID) -> bool:
    started = db.session.execute(
        select(Site.creation_started_at).where(Site.job_id == job_id)
    ).scalar()
    return started is not None


def start_creation(job_id: uuid.UUID) -> None:
    """Stamp the creation's start on the job's site (the caller commits)."""
    site = of_job(job_id)
    if site is not None and site.creation_started_at is None:
        site.creation_started_at = utcnow()


def settle(site: Site, state: SiteState) -> None:
    site.state = state
    if state == SiteState.DELETED:
        site.deleted_at = utcnow()
