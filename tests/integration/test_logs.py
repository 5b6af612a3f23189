"""JSON logs, and one correlation id from an API request through its worker tasks to ERPNext."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from provisioner.models import RunStatus
from provisioner.observability import context
from provisioner.observability import logging as json_logging
from tests.conftest import SIM_SECRET
from tests.helpers import wait_run

pytestmark = pytest.mark.integration


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_one_correlation_id_from_the_request_to_the_engine(quiet, admin_api, client, worker, sim):
    correlation_id = f"ops-{uuid.uuid4().hex}"
    password = f"pw-{uuid.uuid4().hex}"
    response = client.post(
        "/api/v1/tenants",
        headers={**admin_api._headers(), "X-Correlation-ID": correlation_id},
        json={"name": f"Logged Shop {uuid.uuid4().hex[:6]}", "country_code": "KE",
              "admin_email": f"o-{uuid.uuid4().hex[:6]}@example.com", "admin_name": "Owner",
              "admin_password": password},
    )  # fmt: skip
    assert response.status_code == 201, response.json
    assert response.headers["X-Correlation-ID"] == correlation_id
    run = wait_run(response.json["provisioning"]["run_id"])
    assert run.status == RunStatus.COMPLETED

    text = worker.log_path.read_text()
    ours = [line for line in json_lines(text) if line.get("correlation_id") == correlation_id]
    assert {line["step"] for line in ours} == {s.name for s in run.steps if s.planned}
    for line in ours:
        assert line["run"] == str(run.id)
        assert line["tenant"] == run.tenant.slug
        assert isinstance(line["attempt"], int)
        assert {"timestamp", "level", "logger", "message"} <= line.keys()
    engine_calls = sim.calls()
    assert engine_calls
    assert {call["correlation_id"] for call in engine_calls} == {correlation_id}
    for secret in (SIM_SECRET, password, admin_api.token):
        assert secret not in text


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123.DEF:4_5", True), ("", False), ("has spaces", False), ("x" * 129, False)],
)
def test_the_api_answers_with_the_correlation_id(client, sent, kept):
    response = client.get("/healthz", headers={"X-Correlation-ID": sent} if sent else {})
    answered = response.headers["X-Correlation-ID"]
    assert (answered == sent) is kept
    assert len(answered) == 32 or kept


@pytest.fixture
def json_handler(app):
    """Take out the JSON handler the test installs (it writes to the test's captured stderr)."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == json_logging.HANDLER_NAME:
            root.removeHandler(handler)


def test_a_log_line_is_json_with_context_and_without_secrets(json_handler, capsys):
    json_logging.configure("INFO")
    log = logging.getLogger("provisioner.tests")
    with context.bound(correlation_id="c-1", run="r-1", step="create_company", attempt=2):
        log.warning(
            "engine said no to token abc123:s3cr3t (Bearer eyJhbGciOiJIUzI1NiJ9.payload)",
            extra={"api_secret": "s3cr3t", "engine_request": "POST /api/resource/Company"},
        )
    [line] = json_lines(capsys.readouterr().err)
    assert line["level"] == "warning"
    assert line["logger"] == "provisioner.tests"
    assert (line["correlation_id"], line["run"], line["step"], line["attempt"]) == (
        "c-1",
        "r-1",
        "create_company",
        2,
    )
    assert line["engine_request"] == "POST /api/resource/Company"
    assert line["api_secret"] == "[redacted]"
    assert "s3cr3t" not in json.dumps(line)
    assert "eyJhbGciOiJIUzI1NiJ9" not in line["message"]
