"""Part 3: the service calls only addresses the platform allows (engine URLs and webhooks).

The attacks: a workspace owner points the engine URL at an internal service (the worker
calls it and shows the answer), with a `?` that turns the client's fixed path into a query
string; webhooks to 127.0.0.1:5432, 169.254.169.254, decimal IPs and URLs with userinfo;
and a host whose DNS answer changes between the check and the call (rebinding).
The tests' OUTBOUND_ALLOWED_NETWORKS allows 127.0.0.1 only (the simulator and receivers
live there); 127.0.0.2 stands for an internal service.
"""

from __future__ import annotations

import socket
import time

import pytest
import requests
from sqlalchemy import select

from provisioner.engine import EngineCredentials
from provisioner.extensions import db
from provisioner.models import Role, RunStatus, Webhook, WebhookDelivery
from provisioner.orchestration import engines
from provisioner.security import crypto, urls
from tests.helpers import new_tenant, start, wait_run
from tests.integration.conftest import Api, join, make_user
from tests.security.servers import json_answer

pytestmark = pytest.mark.integration
T = "/api/v1/tenants"
INTERNAL = "127.0.0.2"
BAD_URLS = {
    "userinfo": "http://user:pass@127.0.0.1:9/",
    "query": "http://127.0.0.1:9/?x=",
    "fragment": "http://127.0.0.1:9/#x",
    "decimal IP": "http://2130706433:9/",
    "octal IP": "http://0177.0.0.1:9/",
    "hex IP": "http://0x7f.0.0.1:9/",
    "short IP": "http://127.1:9/",
    "IPv6-mapped loopback": "http://[::ffff:127.0.0.2]:9/",
    "IPv6 loopback": "http://[::1]:9/",
    "other loopback": f"http://{INTERNAL}:5432/",
    "link-local (cloud metadata)": "http://169.254.169.254/latest/meta-data/",
    "private": "http://10.1.2.3:8000/",
    "unspecified": "http://0.0.0.0:8000/",
    "multicast": "http://224.0.0.1:8000/",
    "ftp": "ftp://example.com/",
}


def engine_body(url: str, site: str | None = None) -> dict:
    return {"url": url, "site": site, "api_key": "k", "api_secret": "s"}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_no_one_sets_an_engine_or_webhook_url_the_policy_refuses(admin_api, url):
    tenant = new_tenant()
    as_engine = admin_api.put(f"{T}/{tenant.id}/engine", json=engine_body(url))
    as_webhook = admin_api.post(f"{T}/{tenant.id}/webhooks", json={"url": url})

    for answer in (as_engine, as_webhook):
        assert answer.status_code == 422, answer.json
        assert set(answer.json["error"]["details"]) == {"url"}
    db.session.refresh(tenant)
    assert not tenant.has_own_site
    assert db.session.execute(select(Webhook).where(Webhook.tenant_id == tenant.id)).first() is None


def test_owners_pick_only_the_platforms_engines(app, app_ctx, client, monkeypatch):
    tenant, owner = new_tenant(), make_user()
    join(owner, tenant, Role.OWNER)
    as_owner = Api(client, owner)

    arbitrary = as_owner.put(f"{T}/{tenant.id}/engine", json=engine_body("http://127.0.0.1:9"))
    assert arbitrary.status_code == 422
    assert "only pick one of the platform's engines" in arbitrary.json["error"]["message"]
    monkeypatch.setitem(app.config, "ENGINE_ALLOWED_HOSTS", ("*.erp-partner.example",))
    allowed = as_owner.put(
        f"{T}/{tenant.id}/engine", json=engine_body("https://acme.erp-partner.example")
    )
    assert allowed.status_code == 200, allowed.json
    other_port = as_owner.put(
        f"{T}/{tenant.id}/engine", json=engine_body("https://acme.erp-partner.example:6379")
    )
    assert other_port.status_code == 422
    site = f"{tenant.slug}.own.example"
    platform = as_owner.put(
        f"{T}/{tenant.id}/engine", json=engine_body(app.config["ERPNEXT_URL"], site)
    )
    assert platform.status_code == 200, platform.json


def test_private_targets_need_the_explicit_setting(admin_api, app, monkeypatch):
    tenant = new_tenant()
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_NETWORKS", ())  # the default: none
    refused = admin_api.put(f"{T}/{tenant.id}/engine", json=engine_body("http://127.0.0.1:9"))
    assert refused.status_code == 422
    assert "may not call" in refused.json["error"]["message"]
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWED_NETWORKS", (f"{INTERNAL}/32",))
    allowed = admin_api.put(f"{T}/{tenant.id}/engine", json=engine_body(f"http://{INTERNAL}:9"))
    assert allowed.status_code == 200, allowed.json


def test_the_worker_checks_the_address_again_when_it_calls(admin_api, worker, sim, servers):
    """An engine URL stored while its name pointed elsewhere (or before the policy): the
    worker's connection is refused, and the internal service sees nothing."""
    internal = servers(json_answer(200, {"message": "internal secret"}), host=INTERNAL)
    tenant = new_tenant()
    engines.assign_site(tenant, EngineCredentials(internal.url, "k", "s"))
    db.session.commit()

    run = wait_run(start(tenant, "BASIC"))

    check = run.steps[0]
    assert (run.status, check.status, check.attempts) == (RunStatus.FAILED, "failed", 1)
    assert check.error["class"] == "DestinationNotAllowed"
    assert "may not call" in check.error["message"]
    assert internal.requests == []
    assert "internal secret" not in str(
        admin_api.get(f"/api/v1/provisioning/tenants/{tenant.id}/status").json
    )


def test_webhook_deliveries_check_the_address_when_they_are_sent(admin_api, worker, sim, servers):
    internal = servers(json_answer(200, {}), host=INTERNAL)
    tenant = new_tenant()
    db.session.add(
        Webhook(tenant_id=tenant.id, url=f"{internal.url}/hook", secret_enc=crypto.encrypt("s"),
                created_by="tests")
    )  # fmt: skip
    db.session.commit()

    run = wait_run(start(tenant, "BASIC"))
    delivery = _settled_delivery(run.id)

    assert delivery.status == "failed"
    assert "may not call" in delivery.last_error
    assert internal.requests == []


def _settled_delivery(run_id, timeout: float = 30) -> WebhookDelivery:
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        delivery = db.session.execute(
            select(WebhookDelivery).where(WebhookDelivery.run_id == run_id)
        ).scalar()
        if delivery is not None and delivery.status != "pending":
            return delivery
        assert time.monotonic() < deadline, delivery and delivery.attempt_log
        time.sleep(0.1)


def test_a_dns_answer_that_changes_after_the_check_reaches_nothing(servers, monkeypatch):
    """DNS rebinding: the name resolves to a public address when checked, then to an internal
    one. The guarded connection resolves, checks and connects to the very address it
    checked; a permitted one is reached with the URL's own Host header."""
    internal = servers(json_answer(200, {"message": "internal"}), host=INTERNAL)
    receiver = servers(json_answer(200, {"message": "pong"}))
    port = {"rebind.example": internal.httpd.server_port, "ok.example": receiver.httpd.server_port}
    answers = {"rebind.example": ["93.184.216.34", INTERNAL], "ok.example": ["127.0.0.1"]}
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host in answers:  # first answer, then the next one (as a rebinding server does)
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port[host]))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    guard = urls.Guard(urls.networks(("127.0.0.1/32",)))
    guard.check(urls.parse(f"http://rebind.example:{port['rebind.example']}"))  # public: fine
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", urls.GuardedAdapter(guard))

    with pytest.raises(urls.DestinationRefused, match="may not call"):
        session.get(f"http://rebind.example:{port['rebind.example']}/api/method/ping", timeout=5)
    reached = session.get(f"http://ok.example:{port['ok.example']}/api/method/ping", timeout=5)

    assert internal.requests == []
    assert reached.json() == {"message": "pong"}
    assert receiver.requests[0]["headers"]["Host"] == f"ok.example:{port['ok.example']}"


def test_a_failed_step_never_shows_the_text_of_a_non_erpnext_server(
    admin_api, worker, sim, servers
):
    page = "<html>INTERNAL-ADMIN-PAGE db_password=hunter2</html>"
    other = servers(lambda _request: (500, page))
    tenant = new_tenant()
    assert admin_api.put(f"{T}/{tenant.id}/engine", json=engine_body(other.url)).status_code == 200

    run = wait_run(start(tenant, "BASIC"))

    assert run.status == RunStatus.FAILED
    message = run.steps[0].error["message"]
    assert message == "500 Internal Server Error, not an ERPNext answer (its text is not shown)"
    status = admin_api.get(f"/api/v1/provisioning/tenants/{tenant.id}/status").json
    logs = admin_api.get(f"/api/v1/provisioning/tenants/{tenant.id}/logs").json
    assert "INTERNAL-ADMIN-PAGE" not in str(status) + str(logs)
