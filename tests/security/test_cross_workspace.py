"""Part 2: a workspace's engine cannot be set to a site it does not own, and site jobs take
their site from the registry, never from the engine settings an owner can change.

The attack: the owner of workspace B sets B's engine `site` to workspace A's site, then
asks for a backup_site of B, which ran `bench --site <A's site> backup`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from provisioner.extensions import db
from provisioner.models import Role, Tenant
from tests.helpers import new_tenant
from tests.integration.conftest import Api, join, make_user
from tests.integration.site_job_helpers import JOBS, wait_job

pytestmark = pytest.mark.integration
T = "/api/v1/tenants"


def own_site(api, tenant) -> str:
    """Give the workspace a site of its own through a create_site job (real worker)."""
    answer = api.post(JOBS, json={"tenant_id": str(tenant.id), "job_type": "create_site"})
    job = wait_job(answer.json["id"])
    assert job.status == "completed", job.error
    return job.result["site"]


def engine(app, site: str | None) -> dict:
    return {"url": app.config["ERPNEXT_URL"], "site": site, "api_key": "k", "api_secret": "s"}


def test_an_owner_cannot_point_a_workspace_at_another_workspaces_site(
    app, client, admin_api, worker, sim
):
    victim, attacker = new_tenant(), new_tenant()
    victims_site = own_site(admin_api, victim)
    owner = make_user()
    join(owner, attacker, Role.OWNER)
    as_owner = Api(client, owner)

    answers = {
        "registered": as_owner.put(f"{T}/{attacker.id}/engine", json=engine(app, victims_site)),
        "capitals": as_owner.put(
            f"{T}/{attacker.id}/engine", json=engine(app, victims_site.upper())
        ),
        "shared": as_owner.put(f"{T}/{attacker.id}/engine", json=engine(app, None)),
        "as admin": admin_api.put(f"{T}/{attacker.id}/engine", json=engine(app, victims_site)),
    }

    assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 409)
    assert "registered to another workspace" in answers["registered"].json["error"]["message"]
    assert "shared engine's site" in answers["shared"].json["error"]["message"]
    db.session.refresh(attacker)
    assert not attacker.has_own_site
    backup = as_owner.post(JOBS, json={"tenant_id": str(attacker.id), "job_type": "backup_site"})
    assert backup.status_code == 409
    assert backup.json["error"]["message"] == "the workspace has no site of its own"


def test_site_jobs_act_on_the_registered_site_whatever_the_engine_field_says(
    admin_api, worker, sim
):
    victim, attacker = new_tenant(), new_tenant()
    victims_site = own_site(admin_api, victim)
    attackers_site = own_site(admin_api, attacker)
    # However the engine field came to name the victim's site (data from before the policy):
    db.session.execute(
        update(Tenant).where(Tenant.id == attacker.id).values(engine_site=victims_site)
    )
    db.session.commit()

    answer = admin_api.post(JOBS, json={"tenant_id": str(attacker.id), "job_type": "backup_site"})
    backup = wait_job(answer.json["id"])

    assert backup.status == "completed", backup.error
    assert backup.result["site"] == attackers_site
    assert all(attackers_site.replace(".", "_") in f["path"] for f in backup.result["files"])
    deleted = wait_job(
        admin_api.post(JOBS, json={"tenant_id": str(attacker.id), "job_type": "delete_site"}).json[
            "id"
        ]
    )
    assert deleted.result["site"] == attackers_site
    assert victims_site in sim.sites
    assert victims_site not in sim.archived
