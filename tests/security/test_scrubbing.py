"""Part 7: secrets and internal data stay out of what members read.

The attacks: an engine that echoes the request's Authorization header put the token into
the step's error (status, logs, webhook payloads, Flower) and into nested fields of the
JSON logs; read-only members saw webhook and engine URLs in the audit log; and
`…/logs?run_id=` answered 200-empty for another workspace's run but 404 for a random id.
"""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from provisioner.models import Role, RunStatus
from provisioner.observability import logging as json_logging
from provisioner.sites import PermanentSiteError
from tests.helpers import new_tenant, start, wait_run
from tests.integration.conftest import Api, join, make_user

pytestmark = pytest.mark.integration
T = "/api/v1/tenants"
KEY, SECRET = "echo-key-4242", "echo-secret-9999"


def echoing_engine(request: dict) -> tuple[int, dict]:
    """A hostile engine: a Frappe error whose message quotes the credentials it was sent."""
    auth = request["headers"].get("Authorization", "")
    message = f"Bad request from {auth}; headers were {json.dumps(request['headers'])}"
    return 417, {
        "exc_type": "ValidationError",
        "_server_messages": json.dumps([json.dumps({"message": message})]),
        "exc": f"Traceback ... {auth}",
    }


def test_engine_text_is_scrubbed_before_it_is_stored(admin_api, worker, sim, servers):
    engine = servers(echoing_engine)
    tenant = new_tenant()
    body = {"url": engine.url, "api_key": KEY, "api_secret": SECRET}
    assert admin_api.put(f"{T}/{tenant.id}/engine", json=body).status_code == 200

    run = wait_run(start(tenant, "BASIC"))

    assert run.status == RunStatus.FAILED
    assert engine.requests[0]["headers"]["Authorization"] == f"token {KEY}:{SECRET}"
    error = run.steps[0].error
    assert "token [redacted]" in error["message"]
    seen = json.dumps(
        [
            error,
            admin_api.get(f"/api/v1/provisioning/tenants/{tenant.id}/status").json,
            admin_api.get(f"/api/v1/provisioning/tenants/{tenant.id}/logs").json,
        ]
    )
    for secret in (KEY, SECRET):
        assert secret not in seen
        assert secret not in worker.log_path.read_text()


def test_nested_log_fields_are_redacted_at_any_depth():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_logging._formatter())
    logger = logging.getLogger("tests.security.nested")
    logger.addHandler(handler)
    try:
        logger.warning(
            "engine said token %s", f"{KEY}:{SECRET}",
            extra={"engine": {"answer": {"headers": {"Authorization": f"token {KEY}:{SECRET}"}},
                              "lines": [f"Bearer {SECRET}.{SECRET}", {"api_secret": SECRET}]}},
        )  # fmt: skip
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert SECRET not in stream.getvalue()
    assert KEY not in stream.getvalue()
    assert line["engine"]["answer"]["headers"]["Authorization"] == "[redacted]"
    assert line["engine"]["lines"] == ["Bearer [redacted]", {"api_secret": "[redacted]"}]


def test_site_command_output_is_scrubbed_before_it_is_stored():
    error = PermanentSiteError(
        "bench printed Authorization: Basic ZWNoby1rZXk6ZWNoby1zZWNyZXQ=",
        output=[f"api_key={KEY}", f'{{"api_secret": "{SECRET}"}}'],
    )
    summary = json.dumps(error.summary())
    assert KEY not in summary
    assert SECRET not in summary
    assert "ZWNob" not in summary


def test_members_see_no_urls_in_the_audit_log(admin_api, app, client, servers):
    tenant, member = new_tenant(), make_user()
    join(member, tenant, Role.MEMBER)
    hook = servers(lambda _request: (200, {}))
    hook_url = f"{hook.url}/hooks/token-in-path-abc123"
    engine = {"url": app.config["ERPNEXT_URL"], "site": f"{tenant.slug}.own.example",
              "api_key": "k", "api_secret": "s"}  # fmt: skip
    assert admin_api.post(f"{T}/{tenant.id}/webhooks", json={"url": hook_url}).status_code == 201
    assert admin_api.put(f"{T}/{tenant.id}/engine", json=engine).status_code == 200

    as_member = Api(client, member)
    seen = json.dumps([as_member.get(f"{T}/{tenant.id}/audit").json,
                       as_member.get(f"{T}/{tenant.id}/engine").json])  # fmt: skip
    as_admin = json.dumps(admin_api.get(f"{T}/{tenant.id}/audit").json)

    assert "://" not in seen
    assert "token-in-path" not in seen
    assert {"webhook_create", "engine.set"} <= {e["action"] for e in json.loads(seen)[0]["items"]}
    assert hook_url in as_admin
    assert app.config["ERPNEXT_URL"] in as_admin


def test_another_workspaces_run_id_answers_like_an_unknown_one(app_ctx, client):
    mine, theirs = new_tenant(), new_tenant()
    owner = make_user()
    join(owner, mine, Role.OWNER)
    start(mine, "BASIC")
    their_run = start(theirs, "BASIC")
    api = Api(client, owner)
    path = f"/api/v1/provisioning/tenants/{mine.id}/logs?run_id="

    foreign = api.get(path + str(their_run))
    unknown = api.get(path + str(uuid.uuid4()))

    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json == unknown.json
