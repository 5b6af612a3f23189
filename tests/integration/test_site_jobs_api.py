"""The site job API: validation, visibility and roles, conflicts, listing, cancel, 503."""

from __future__ import annotations

import uuid

import pytest
from celery.canvas import Signature
from kombu.exceptions import OperationalError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from provisioner.engine import EngineCredentials
from provisioner.extensions import db
from provisioner.models import JobStatus, Role, SiteJob
from provisioner.orchestration import engines
from tests.helpers import new_tenant
from tests.integration.conftest import Api, join, make_user
from tests.integration.site_job_helpers import JOBS, job_row, kinds

pytestmark = pytest.mark.integration
S = JobStatus


def body(tenant, job_type: str = "create_site") -> dict[str, str]:
    return {"tenant_id": str(tenant.id), "job_type": job_type}


def with_site(tenant, site: str = "elsewhere.localhost"):
    engines.assign_site(tenant, EngineCredentials("http://127.0.0.1:1", "k", "s", site))
    db.session.commit()
    return tenant


def test_bad_input_is_422_naming_each_field(admin_api):
    empty = admin_api.post(JOBS, json={})
    assert empty.status_code == 422
    assert set(empty.json["error"]["details"]) == {"tenant_id", "job_type"}
    bad = admin_api.post(JOBS, json={"tenant_id": "nope", "job_type": "explode", "extra": 1})
    assert bad.status_code == 422
    assert set(bad.json["error"]["details"]) == {"tenant_id", "job_type", "extra"}
    listed = admin_api.get(f"{JOBS}?status=weird&job_type=x&size=0&tenant_id=1")
    assert listed.status_code == 422
    assert set(listed.json["error"]["details"]) == {"status", "job_type", "size", "tenant_id"}
    assert admin_api.post(JOBS, data="{", content_type="application/json").status_code == 400
    assert admin_api.get(f"{JOBS}/not-a-uuid").status_code == 404
    unknown = admin_api.post(JOBS, json={"tenant_id": str(uuid.uuid4()), "job_type": "create_site"})
    assert unknown.status_code == 404


def test_members_read_jobs_owners_steer_them_strangers_see_nothing(app_ctx, client):
    tenant = new_tenant()
    member, stranger = make_user(), make_user()
    join(member, tenant, Role.MEMBER)
    job = job_row(tenant, "create_site", S.RUNNING)
    as_member, as_stranger = Api(client, member), Api(client, stranger)

    assert as_member.post(JOBS, json=body(tenant)).status_code == 403
    assert as_member.get(f"{JOBS}/{job.id}").status_code == 200
    assert as_member.post(f"{JOBS}/{job.id}/cancel").status_code == 403
    assert as_stranger.post(JOBS, json=body(tenant)).status_code == 404
    assert as_stranger.get(f"{JOBS}/{job.id}").json["error"]["message"] == "no such job"
    assert as_stranger.post(f"{JOBS}/{job.id}/retry").status_code == 404
    assert as_stranger.get(JOBS).json["total"] == 0


def test_a_job_must_fit_the_workspace(admin_api):
    bare = new_tenant()
    for job_type in ("backup_site", "delete_site"):
        answer = admin_api.post(JOBS, json=body(bare, job_type))
        assert answer.status_code == 409
        assert answer.json["error"]["message"] == "the workspace has no site of its own"
    # A site pointed to by hand is backed up, but neither replaced nor dropped from here.
    pointed = with_site(new_tenant())
    assert admin_api.post(JOBS, json=body(pointed)).status_code == 409
    refused = admin_api.post(JOBS, json=body(pointed, "delete_site"))
    assert refused.status_code == 409
    assert "not made by a create_site job" in refused.json["error"]["message"]


def test_one_active_job_per_workspace_and_type(admin_api):
    tenant = new_tenant()
    active = job_row(tenant, "create_site", S.RUNNING)

    answer = admin_api.post(JOBS, json=body(tenant))

    assert answer.status_code == 409
    assert answer.json["error"]["details"] == {"job_id": str(active.id), "status": "running"}
    job_row(tenant, "create_site", S.FAILED)  # finished jobs do not count
    with pytest.raises(IntegrityError, match="uq_site_jobs_one_active_per_tenant_type"):
        job_row(tenant, "create_site", S.PENDING)
    db.session.rollback()


@pytest.mark.parametrize("status", [S.PENDING, S.RUNNING, S.CANCELLED])
def test_retry_is_only_for_failed_or_completed_jobs(admin_api, status):
    job = job_row(new_tenant(), "backup_site", status)

    answer = admin_api.post(f"{JOBS}/{job.id}/retry")

    assert answer.status_code == 409
    assert answer.json["error"]["details"] == {"status": status.value}


def test_cancel_a_pending_job_then_again(admin_api):
    job = job_row(new_tenant(), "create_site", S.PENDING)

    answer = admin_api.post(f"{JOBS}/{job.id}/cancel", json={})

    assert answer.status_code == 200
    assert (answer.json["status"], answer.json["message"]) == (
        "cancelled",
        f"cancelled by {admin_api.user.email}",
    )
    assert answer.json["finished_at"]
    assert kinds(job) == ["cancelled"]
    again = admin_api.post(f"{JOBS}/{job.id}/cancel")
    assert again.status_code == 409
    assert again.json["error"]["details"] == {"status": "cancelled"}


def test_listing_filters_pages_and_shows_only_visible_jobs(app_ctx, client):
    mine, theirs = new_tenant(), new_tenant()
    user = make_user()
    join(user, mine, Role.OWNER)
    made = [
        job_row(mine, "create_site", S.COMPLETED),
        job_row(mine, "backup_site", S.FAILED),
        job_row(mine, "backup_site", S.COMPLETED),
        job_row(theirs, "backup_site", S.COMPLETED),
    ]
    api, admin = Api(client, user), Api(client, make_user(admin=True))

    everything = api.get(JOBS).json
    assert everything["total"] == 3
    assert [j["id"] for j in everything["items"]] == [str(j.id) for j in reversed(made[:3])]
    backups = api.get(f"{JOBS}?job_type=backup_site&status=completed").json
    assert [j["id"] for j in backups["items"]] == [str(made[2].id)]
    second = api.get(f"{JOBS}?page=2&size=2").json
    assert (second["page"], second["size"], second["total"]) == (2, 2, 3)
    assert [j["id"] for j in second["items"]] == [str(made[0].id)]
    assert api.get(f"{JOBS}?tenant_id={theirs.id}").json["total"] == 0
    assert admin.get(f"{JOBS}?tenant_id={theirs.id}").json["total"] == 1


def test_broker_down_is_503_and_leaves_nothing(admin_api, monkeypatch):
    def unreachable(*_, **__):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(Signature, "apply_async", unreachable)
    tenant = new_tenant()
    failed = job_row(tenant, "backup_site", S.FAILED, error={"message": "boom"})

    created = admin_api.post(JOBS, json=body(tenant))
    retried = admin_api.post(f"{JOBS}/{failed.id}/retry")

    assert (created.status_code, retried.status_code) == (503, 503)
    assert created.json["error"]["code"] == "queue_unavailable"
    db.session.expire_all()
    jobs = db.session.execute(select(SiteJob).where(SiteJob.tenant_id == tenant.id)).scalars()
    assert [(j.id, j.status, j.error) for j in jobs] == [(failed.id, "failed", {"message": "boom"})]
