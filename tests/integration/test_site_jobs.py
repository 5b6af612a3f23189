"""Site jobs end to end on the simulator backend: a real worker, the simulator's admin API."""

from __future__ import annotations

import json

import pytest
from celery.canvas import Signature

from provisioner.engine import EngineCredentials
from provisioner.extensions import db
from provisioner.models import AuditEntry, JobType, RunStatus, TenantStatus
from provisioner.orchestration import engines, job_execution, jobs
from provisioner.sites import SiteCreated
from tests.conftest import SIM_KEY
from tests.helpers import new_tenant, start, wait_run
from tests.integration.site_job_helpers import JOBS, kinds, register_site, wait_job

pytestmark = pytest.mark.integration


def test_create_provision_back_up_and_delete_a_site(admin_api, worker, sim, simulator_server):
    tenant = new_tenant()
    site = f"{tenant.slug}.localhost"

    answer = admin_api.post(JOBS, json={"tenant_id": str(tenant.id), "job_type": "create_site"})

    assert answer.status_code == 201, answer.json
    assert answer.json["status"] in ("pending", "running")  # the worker may be that quick
    created = wait_job(answer.json["id"])
    assert created.status == "completed", created.error
    assert (created.progress, created.attempts) == (100, 1)
    assert created.result == {"site": site, "url": simulator_server.url, "reused": False}
    db.session.refresh(tenant)
    assert (tenant.status, tenant.engine_site) == (TenantStatus.ACTIVE, site)
    credentials = engines.credentials_for(tenant)
    assert (credentials.site, credentials.url) == (site, simulator_server.url)
    assert credentials.api_key not in (SIM_KEY, "")
    shown = admin_api.get(f"{JOBS}/{created.id}").json
    assert [e["kind"] for e in shown["events"]][:3] == ["created", "started", "step"]
    assert credentials.api_secret not in json.dumps(shown)

    # Provisioning now targets the new site: the company is made there, not on the shared one.
    run = wait_run(start(tenant))
    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    on_site = engines.client_for(credentials)
    assert on_site.count("Company", [["name", "=", tenant.name]]) == 1
    writes = {c["site"] for c in sim.calls() if c["method"] in ("POST", "PUT")}
    assert writes == {site}

    backup = _run(admin_api, tenant, "backup_site")
    assert backup.result["site"] == site
    assert [f["path"].rsplit("-", 1)[-1] for f in backup.result["files"]] == [
        "database.sql.gz",
        "site_config_backup.json",
    ]
    assert backup.result["total_size"] > 0

    deleted = _run(admin_api, tenant, "delete_site")
    assert deleted.result == {"site": site, "already_gone": False}
    db.session.refresh(tenant)
    assert tenant.status == TenantStatus.ARCHIVED
    assert site in sim.archived
    actions = db.session.execute(
        db.select(AuditEntry.action).where(AuditEntry.tenant_id == tenant.id)
    ).scalars()
    assert list(actions).count("job.create") == 3


def _run(api, tenant, job_type: str):
    answer = api.post(JOBS, json={"tenant_id": str(tenant.id), "job_type": job_type})
    assert answer.status_code == 201, answer.json
    job = wait_job(answer.json["id"])
    assert job.status == "completed", job.error
    return job


def test_a_failed_job_fails_for_good_and_retry_runs_it_again(admin_api, worker, sim):
    tenant = new_tenant()
    engines.assign_site(tenant, EngineCredentials("http://127.0.0.1:1", "k", "s", "gone.localhost"))
    register_site(tenant, "gone.localhost")  # made by this service, then lost on the engine
    answer = admin_api.post(JOBS, json={"tenant_id": str(tenant.id), "job_type": "backup_site"})

    failed = wait_job(answer.json["id"])

    assert failed.status == "failed"
    assert failed.error == {
        "class": "PermanentSiteError",
        "message": "site gone.localhost does not exist",
        "status": 404,
    }
    assert failed.attempts == 1
    retried = admin_api.post(f"{JOBS}/{failed.id}/retry")
    assert retried.status_code == 202
    assert (retried.json["status"], retried.json["error"]) == ("pending", None)
    again = wait_job(failed.id, until=lambda j: j.attempts == 2 and j.status == "failed")
    assert kinds(again).count("failed") == 2


def test_a_result_after_a_cancel_is_ignored(app_ctx, monkeypatch):
    """The worker's last check: an outcome that lands after the cancel changes nothing."""
    monkeypatch.setattr(Signature, "apply_async", lambda *_, **__: None)  # we play the worker
    tenant = new_tenant()
    job = jobs.create(tenant, JobType.CREATE_SITE, "tests")
    claim = job_execution.claim(str(job.id), job.task_id)
    assert claim.run
    jobs.cancel(job.id, "tests")

    applied = job_execution.complete(
        str(job.id), job.task_id, SiteCreated(claim.site, "http://x", "key", "secret")
    )

    assert not applied
    db.session.refresh(tenant)
    assert (tenant.status, tenant.has_own_site) == (TenantStatus.PENDING, False)
    assert kinds(job)[-2:] == ["cancelled", "late_result_ignored"]
    assert wait_job(job.id).status == "cancelled"
