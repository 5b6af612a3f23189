"""FULL_POS end to end: real PostgreSQL, real Redis, a real worker, the simulator as engine."""

from __future__ import annotations

import pytest

from provisioner.models import RunStatus, StepStatus
from tests.helpers import assert_exactly_one_of_each, engine_documents, new_tenant, start, wait_run

pytestmark = pytest.mark.integration


def test_full_pos_completes_with_exactly_one_of_each(app_ctx, worker, sim, engine):
    tenant = new_tenant()
    run = wait_run(start(tenant, include_demo_data=True))

    assert run.status == RunStatus.COMPLETED, [(s.name, s.status, s.error) for s in run.steps]
    assert all(s.status == StepStatus.COMPLETED for s in run.steps)
    assert run.progress == 100
    assert tenant.provisioning_status == "PROVISIONED"
    assert_exactly_one_of_each(engine, tenant.name)


def test_starting_again_makes_no_new_documents(app_ctx, worker, sim, engine):
    tenant = new_tenant()
    first = wait_run(start(tenant))
    assert first.status == RunStatus.COMPLETED
    before = engine_documents(engine, tenant.name)
    calls_before = len(sim.calls())

    second = wait_run(start(tenant))

    assert second.status == RunStatus.COMPLETED
    assert engine_documents(engine, tenant.name) == before
    writes = [c for c in sim.calls()[calls_before:] if c["method"] in ("POST", "PUT", "DELETE")]
    assert writes == [], writes
    assert all(not (s.result or {}).get("created", False) for s in second.steps)
