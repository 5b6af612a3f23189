"""Time limits from declared budgets, and the watchdog's queue and schedule (settings only)."""

from __future__ import annotations

import pytest

from provisioner import config
from provisioner.orchestration import budgets
from provisioner.steps import STEPS
from provisioner.steps.create_company import WIZARD_TIMEOUT

DEFAULTS = config.from_env({})


def test_the_setup_wizard_fits_in_create_companys_soft_time_limit():
    limits = {step.name: budgets.step_limits(step, DEFAULTS) for step in STEPS}
    soft, hard = limits["create_company"]
    read = DEFAULTS["ENGINE_READ_TIMEOUT"]
    # The wizard, a lock wait and the company's other calls, each at its limit.
    assert soft > WIZARD_TIMEOUT + DEFAULTS["SITE_LOCK_TIMEOUT"] + 4 * read
    assert hard > soft
    assert all(soft >= DEFAULTS["STALE_AFTER"] + 10 * read for soft, _ in limits.values())


def test_the_throttles_slot_wait_counts_when_the_cap_is_on():
    step = STEPS[0]
    capped = {**DEFAULTS, "ENGINE_MAX_CONCURRENCY": 4}
    soft, _ = budgets.step_limits(step, DEFAULTS)
    assert (
        budgets.step_limits(step, capped)[0]
        == soft + step.engine_calls * DEFAULTS["ENGINE_SLOT_WAIT"]
    )


@pytest.mark.parametrize("backend", ["simulator", "bench"])
def test_each_site_job_type_has_a_budget(backend):
    from provisioner.sites.bench import BenchBackend, settings_from
    from provisioner.sites.simulator import SimulatorBackend

    made = (
        BenchBackend(settings_from(DEFAULTS))
        if backend == "bench"
        else SimulatorBackend("http://engine", 3.05)
    )
    budgets_by_type = {
        t: made.time_budget(t) for t in ("create_site", "delete_site", "backup_site")
    }
    assert budgets_by_type["create_site"] > budgets_by_type["backup_site"] > 0
    if backend == "bench":  # new-site can take minutes: each command has BENCH_TIMEOUT
        assert budgets_by_type["create_site"] >= 3 * DEFAULTS["BENCH_TIMEOUT"]


def test_a_worker_without_q_consumes_the_steps_and_the_watchdogs_queues():
    celery = config.from_env({"CELERY_DEFAULT_QUEUE": "steps", "WATCHDOG_QUEUE": "dog"})["CELERY"]
    assert [(q.name, q.routing_key, q.exchange.name) for q in celery["task_queues"]] == [
        ("steps", "steps", "steps"),
        ("dog", "dog", "dog"),
    ]
    [routes] = [r for r in celery["task_routes"] if isinstance(r, dict)]
    assert routes == {  # the beat tasks that must not wait behind a backlog of steps
        "provisioner.watchdog.sweep": {"queue": "dog"},
        "provisioner.engine.probe": {"queue": "dog"},
    }


def test_sweeps_never_expire_and_a_dead_worker_is_found_within_a_minute():
    sweep = DEFAULTS["CELERY"]["beat_schedule"]["watchdog"]
    assert "expires" not in sweep.get("options", {})
    # The key expires TTL after the last beat; the next sweep finds it at most an interval on.
    assert DEFAULTS["WORKER_LIVENESS_TTL"] + sweep["schedule"] < 60
    assert DEFAULTS["LIVENESS_KEY_PREFIX"] == "provisioner:provisioner"
