"""Part 1: no workspace takes over the shared site or another workspace's site.

The attack: a workspace named "Erp" gets the site name `erp.localhost`, which is the shared
default site of the simulator (and of many real benches). Before the site registry,
create_site treated the existing site as "reused", regenerated its Administrator API keys
(every other workspace's provisioning then failed) and recorded it as the workspace's own,
so that delete_site could drop it.
"""

from __future__ import annotations

import pytest
from celery.canvas import Signature
from sqlalchemy import select

from provisioner.engine import EngineClient, EngineCredentials
from provisioner.extensions import db
from provisioner.models import Site, SiteState, TenantStatus
from provisioner.orchestration import engines
from tests.conftest import SIM_KEY, SIM_SECRET
from tests.helpers import new_tenant
from tests.integration.site_job_helpers import JOBS, register_site, wait_job

pytestmark = pytest.mark.integration
SHARED = "erp.localhost"  # the simulator's default site


def create_site(api, tenant):
    return api.post(JOBS, json={"tenant_id": str(tenant.id), "job_type": "create_site"})


def site_of(tenant) -> Site | None:
    db.session.expire_all()
    return db.session.execute(select(Site).where(Site.tenant_id == tenant.id)).scalar()


def test_a_workspace_named_like_the_shared_site_does_not_take_it_over(
    admin_api, worker, sim, simulator_server
):
    # ERPNEXT_SITE is not set in the tests: the service does not know the shared site's
    # name, so only the registry stands between the workspace and the shared site.
    tenant = new_tenant("Erp")
    assert f"{tenant.slug}.localhost" == SHARED
    answer = create_site(admin_api, tenant)
    assert answer.status_code == 201, answer.json

    failed = wait_job(answer.json["id"])

    assert failed.status == "failed"
    assert failed.error["class"] == "SiteTaken"
    assert "not taken over" in failed.error["message"]
    # The shared site's keys still work: nothing regenerated them.
    assert sim.sites[SHARED].keys == {SIM_KEY: SIM_SECRET}
    shared = EngineClient(EngineCredentials(simulator_server.url, SIM_KEY, SIM_SECRET))
    assert shared.logged_user() == "Administrator"
    db.session.refresh(tenant)
    assert (tenant.has_own_site, tenant.status) == (False, TenantStatus.PENDING)
    site = site_of(tenant)
    assert (site.state, site.creation_started_at) == (SiteState.FAILED, None)
    # Nothing to drop or back up: the workspace has no registered site.
    for job_type in ("delete_site", "backup_site"):
        refused = admin_api.post(JOBS, json={"tenant_id": str(tenant.id), "job_type": job_type})
        assert refused.status_code == 409
        assert refused.json["error"]["message"] == "the workspace has no site of its own"
    # A retry is refused the same way: a failed takeover is not "an earlier attempt".
    assert admin_api.post(f"{JOBS}/{failed.id}/retry").status_code == 202
    again = wait_job(failed.id, until=lambda j: j.attempts == 2 and j.status == "failed")
    assert again.error["class"] == "SiteTaken"
    assert sim.sites[SHARED].keys == {SIM_KEY: SIM_SECRET}
    assert SHARED not in sim.archived


@pytest.mark.parametrize("setting", ["ERPNEXT_SITE", "ERPNEXT_URL", "BENCH_SITE_URL"])
def test_the_shared_sites_names_are_refused_at_job_creation(admin_api, app, monkeypatch, setting):
    tenant = new_tenant()
    name = f"{tenant.slug}.localhost"
    value = name if setting == "ERPNEXT_SITE" else f"http://{name}:8000"
    monkeypatch.setitem(app.config, setting, value)

    answer = create_site(admin_api, tenant)

    assert answer.status_code == 409
    assert answer.json["error"]["message"] == (
        f"site {name} is the shared engine's site; it belongs to no workspace"
    )
    assert site_of(tenant) is None


def test_another_workspaces_site_is_refused_at_job_creation(admin_api):
    registered, configured = new_tenant(), new_tenant()
    owner = new_tenant()
    register_site(owner, f"{registered.slug}.localhost")  # e.g. made under an older slug
    engines.assign_site(
        new_tenant(),
        EngineCredentials("http://127.0.0.1:9", "k", "s", f"{configured.slug}.localhost"),
    )
    db.session.commit()

    refused = [create_site(admin_api, tenant) for tenant in (registered, configured)]

    assert [a.status_code for a in refused] == [409, 409]
    assert refused[0].json["error"]["message"].endswith("is registered to another workspace")
    assert refused[1].json["error"]["message"].endswith("is the engine site of another workspace")


def test_the_intent_is_registered_before_any_worker_runs(admin_api, monkeypatch):
    monkeypatch.setattr(Signature, "apply_async", lambda *_, **__: None)  # no worker runs it
    tenant = new_tenant()

    answer = create_site(admin_api, tenant)

    assert answer.status_code == 201
    site = site_of(tenant)
    assert (site.name, site.state, str(site.job_id)) == (
        f"{tenant.slug}.localhost",
        SiteState.CREATING,
        answer.json["id"],
    )
    assert site.creation_started_at is None  # stamped by the worker just before it makes it


def test_only_this_workspaces_own_earlier_attempt_is_kept(admin_api, worker, sim):
    tenant = new_tenant()
    created = wait_job(create_site(admin_api, tenant).json["id"])
    assert created.status == "completed", created.error
    site = site_of(tenant)
    assert site.state == SiteState.ACTIVE
    assert site.creation_started_at is not None

    # Run again (as after a lost answer): the registry says this workspace made it.
    assert admin_api.post(f"{JOBS}/{created.id}/retry").status_code == 202
    again = wait_job(created.id, until=lambda j: j.attempts == 2 and j.finished_at is not None)
    assert again.status == "completed", again.error
    assert again.result["reused"] is True
