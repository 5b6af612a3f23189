"""Fuzzing every route of /api/v1/openapi.json with schemathesis, with and without a token:
never a 5xx, and every answer matches the document (status, content type, body schema)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def fuzz(operation, headers: dict[str, str], examples: int) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def one(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    one()


@pytest.fixture(scope="module")
def token(app) -> str:
    from provisioner.extensions import db
    from provisioner.security import tokens
    from provisioner.tenancy import create_user

    with app.app_context():
        user = create_user("fuzz-admin@example.com", "fuzz-password", is_admin=True)
        db.session.commit()
        return tokens.issue(user.id, user.token_version)[0]


@pytest.mark.parametrize("signed_in", [True, False], ids=["with-token", "without-token"])
def test_fuzz_every_operation(app, token, worker, sim, signed_in):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"} if signed_in else {}
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            fuzz(operation, headers, EXAMPLES if signed_in else 3)
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
