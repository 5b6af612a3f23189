"""A workspace's own engine site, an offline engine, an unreachable broker, the OpenAPI document."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import requests
from sqlalchemy import text

from provisioner.extensions import db
from provisioner.models import RunStatus
from tests.helpers import new_tenant, start, wait_run
from tests.integration.conftest import Api, make_user

pytestmark = pytest.mark.integration
T = "/api/v1/tenants"
V1 = "/api/v1/provisioning/tenants"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_own_site_credentials_are_encrypted_and_used(app_ctx, client, worker, sim,
                                                     simulator_server):  # fmt: skip
    made = requests.post(
        f"{simulator_server.url}/__simulator__/sites",
        json={"site": "own.example.com", "fresh": False},
        timeout=10,
    ).json()
    tenant, admin = new_tenant(), Api(client, make_user(admin=True))
    answer = admin.put(f"{T}/{tenant.id}/engine", json={
        "url": simulator_server.url, "site": made["site"],
        "api_key": made["api_key"], "api_secret": made["api_secret"],
    })  # fmt: skip
    assert answer.status_code == 200, answer.json
    assert answer.json == {"own_site": True, "url": simulator_server.url, "site": made["site"]}
    stored = db.session.execute(
        text("SELECT engine_api_secret_enc FROM tenants WHERE id = :id"), {"id": tenant.id}
    ).scalar_one()
    assert made["api_secret"] not in stored

    run = wait_run(start(tenant))

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    company_posts = [c for c in sim.calls() if c["path"] == "/api/resource/Company"
                     and c["method"] == "POST"]  # fmt: skip
    assert [c["site"] for c in company_posts] == ["own.example.com"]
    assert made["api_secret"] not in json.dumps(admin.get(f"{V1}/{tenant.id}/logs").json)


def test_an_offline_engine_keeps_the_run_waiting_until_it_is_fixed(app_ctx, client, worker, sim,
                                                                   simulator_server):  # fmt: skip
    tenant, admin = new_tenant(), Api(client, make_user(admin=True))
    offline = {"url": f"http://127.0.0.1:{closed_port()}", "api_key": "k", "api_secret": "s"}
    assert admin.put(f"{T}/{tenant.id}/engine", json=offline).status_code == 200

    waiting = wait_run(start(tenant), timeout=90, until=lambda r: r.steps[0].status == "waiting")

    check = waiting.steps[0]
    assert waiting.status == RunStatus.IN_PROGRESS  # waiting for its engine, not failed
    assert check.name == "check_engine"
    assert "engine offline" in check.error["message"]
    status = admin.get(f"{V1}/{tenant.id}/status").json
    assert "engine offline" in status["waiting_for_engine"]["reason"]
    # The workspace is pointed at a working engine: its run goes on by itself.
    assert admin.request("DELETE", f"{T}/{tenant.id}/engine").json["own_site"] is False
    assert wait_run(waiting.id).status == RunStatus.COMPLETED


def test_unreachable_broker_is_503_and_leaves_nothing_half_made(app, database_url):
    """Another app process whose broker is a closed port: start answers 503, no run is kept."""
    env = {**os.environ, "CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    script = """
import json
from provisioner import create_app
from provisioner.extensions import db
from provisioner.models import Run
from tests.helpers import new_tenant
from tests.integration.conftest import Api, make_user
app = create_app({"TESTING": True})
with app.app_context():
    tenant, api = new_tenant(), Api(app.test_client(), make_user(admin=True))
    answer = api.post(f"/api/v1/provisioning/tenants/{tenant.id}/start", json={})
    runs = db.session.query(Run).filter_by(tenant_id=tenant.id).count()
    db.session.refresh(tenant)
    print(json.dumps({"status": answer.status_code, "body": answer.get_json(), "runs": runs,
                      "provisioning": tenant.provisioning_status}))
"""
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"]["error"]["code"] == "queue_unavailable"
    assert outcome["runs"] == 0
    assert outcome["provisioning"] == "NOT_PROVISIONED"


def test_openapi_covers_every_api_route(app, client):
    document = client.get("/api/v1/openapi.json").json
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }  # fmt: skip
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = rule.rule.replace("<", "{").replace(">", "}")
            path = path.replace("{int:", "{").replace("{path:", "{")
            routes |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes <= documented, routes - documented
    start_op = document["paths"]["/api/v1/provisioning/tenants/{tenant_id}/start"]["post"]
    assert start_op["requestBody"]["content"]["application/json"]["schema"]
    assert "202" in start_op["responses"]
    assert document["components"]["schemas"]["RunStatus"]["properties"]["steps"]
