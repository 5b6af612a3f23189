"""GET /metrics: Prometheus text computed from the database, whatever process did the work."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from provisioner.models import RunStatus
from tests.helpers import new_tenant, start, wait_run

pytestmark = pytest.mark.integration


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_run_done_by_a_worker_shows_in_the_web_process_metrics(quiet, client, worker, sim):
    sim.add_fault(kind="error", status=503, exc_type="SessionStopped", method="POST",
                  path="^/api/resource/Warehouse$", count=1)  # fmt: skip
    before = scrape(client)

    run = wait_run(start(new_tenant()))
    assert run.status == RunStatus.COMPLETED
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("provisioner_runs_started_total", plan="FULL_POS") == 1
    assert grew("provisioner_runs_finished_total", plan="FULL_POS", outcome="completed") == 1
    assert grew("provisioner_step_retries_total", step="create_warehouses",
                reason="EngineBusy") == 1  # fmt: skip
    for step in run.steps:
        if not step.planned:
            continue
        labels = {"step": step.name, "outcome": "completed"}
        assert grew("provisioner_step_duration_seconds_count", **labels) == 1, step.name
        assert grew("provisioner_step_duration_seconds_sum", **labels) > 0, step.name
        counts = [
            value(after, "provisioner_step_duration_seconds_bucket", **labels, le=le)
            for le in ("0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0",
                       "120.0", "300.0", "+Inf")
        ]  # fmt: skip
        assert counts == sorted(counts), step.name  # cumulative buckets
        assert counts[-1] == value(after, "provisioner_step_duration_seconds_count", **labels)
    for name in ("provisioner_long_running_runs", "provisioner_oldest_pending_run_age_seconds"):
        assert (name, frozenset()) in after
    assert ("provisioner_active_runs", frozenset({("status", "IN_PROGRESS")})) in after
    assert ("provisioner_webhook_deliveries", frozenset({("status", "delivered")})) in after
    assert any(name == "provisioner_queue_messages" for name, _ in after)


def test_metrics_need_no_token_and_hold_no_names(app_ctx, client):
    new_tenant("Secretive Shop Ltd")
    text = client.get("/metrics").get_data(as_text=True)
    assert "secretive" not in text.lower()
    assert "provisioner_runs_started_total" in text
