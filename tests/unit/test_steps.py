"""Each step against the simulator: what it makes, that it makes it once, and its failures."""

from __future__ import annotations

import pytest

from provisioner.engine.errors import (
    EngineBusy,
    EngineConflict,
    EngineUnreachable,
    ValidationFailed,
)
from provisioner.steps import STEP_NAMES
from provisioner.steps.base import MissingPrerequisite, NonCriticalFailure, RunOptions
from provisioner.steps.configure_settings import merge
from provisioner.steps.create_company import abbreviation_base, free_abbreviation
from tests.helpers import assert_exactly_one_of_each
from tests.unit.conftest import StepRunner, profile


def test_full_plan_makes_everything_once(runner, engine):
    for name in STEP_NAMES:
        runner.run(name)
    counts = assert_exactly_one_of_each(engine, "Acme Kenya Ltd")
    assert counts["Account"] == 82  # the Standard chart

    again = [runner.run(name) for name in STEP_NAMES]  # idempotent: nothing new
    assert not any(r.result.get("created") for r in again)
    assert assert_exactly_one_of_each(engine, "Acme Kenya Ltd") == counts


def test_company_records_what_later_steps_need(runner):
    outcome = runner.run("create_company")
    assert outcome.metadata == {
        "company": "Acme Kenya Ltd",
        "abbr": "AKL",
        "currency": "KES",
        "chart_of_accounts": "Standard",
    }
    # ERPNext v15 has no Kenya chart: the fallback is said in plain words.
    assert any("no 'Kenya' chart" in note for note in outcome.notes)


def test_chart_step_records_accounts(runner):
    runner.run_until("import_chart_of_accounts")
    assert runner.metadata["cash_account"] == "Cash - AKL"
    assert runner.metadata["write_off_account"] == "Write Off - AKL"
    assert runner.metadata["cost_center"] == "Main - AKL"
    assert runner.metadata["receivable_account"] == "Debtors - AKL"


def test_abbreviations_stay_unique_across_companies(engine, runner):
    runner.run("create_company")
    other = StepRunner(engine, profile("Acme Kenya Logistics"), RunOptions())
    outcome = other.run("create_company")
    assert outcome.metadata["abbr"] == "AKL2"
    assert abbreviation_base("Zed") == "ZED"


def test_abbreviations_have_no_upper_bound():
    """A shared site with 150 companies of the same initials (a 1,000-tenant burst once ran
    out at AKL99): the next one gets AKL151, found with one engine call."""

    class Site:
        calls = 0

        def get_list(self, doctype: str, **kw):
            self.calls += 1
            assert (doctype, kw["filters"], kw["limit"]) == (
                "Company",
                [["abbr", "like", "AKL%"]],
                0,
            )
            return [{"abbr": "AKL"}, *({"abbr": f"akl{n}"} for n in range(2, 151))]

    site = Site()
    assert free_abbreviation(site, "Acme Kenya Ltd") == "AKL151"
    assert site.calls == 1


@pytest.mark.parametrize(
    ("step", "method", "path"),
    [
        ("create_company", "POST", "^/api/resource/Company$"),
        ("create_warehouses", "POST", "^/api/resource/Warehouse$"),
        ("configure_settings", "PUT", "^/api/resource/Selling Settings/"),
        ("create_demo_items", "POST", "^/api/resource/Item$"),
        ("create_walk_in_customer", "POST", "^/api/resource/Customer$"),
        ("create_pos_profile", "POST", "^/api/resource/POS Profile$"),
        ("open_pos_session", "POST", "^/api/resource/POS Opening Entry$"),
    ],
)
def test_a_write_whose_answer_was_lost_is_found_on_retry(runner, sim, engine, step, method, path):
    runner.run_until(STEP_NAMES[STEP_NAMES.index(step) - 1])
    sim.add_fault(kind="commit_then_drop", method=method, path=path, count=1)
    with pytest.raises(EngineUnreachable):
        runner.run(step)
    runner.run(step)  # the retry: looks up first, finds what the lost answer made
    for name in STEP_NAMES[STEP_NAMES.index(step) + 1 :]:
        runner.run(name)
    assert_exactly_one_of_each(engine, "Acme Kenya Ltd")
    assert engine.count("Item", [["item_code", "like", "AKL-%"]]) == 4


def test_missing_prerequisite_names_the_step_to_run(runner):
    with pytest.raises(MissingPrerequisite, match="run create_company first"):
        runner.run("create_warehouses")


def test_pos_store_failure_is_not_critical(engine, sim):
    runner = StepRunner(engine, profile(), RunOptions(pos_store_enabled=False))
    runner.run_until("create_warehouses")  # Main Store only
    runner.options = RunOptions(pos_store_enabled=True)
    sim.add_fault(kind="error", status=417, exc_type="ValidationError",
                  message="Warehouse names are locked", method="POST",
                  path="^/api/resource/Warehouse$")  # fmt: skip
    with pytest.raises(NonCriticalFailure, match="Warehouse names are locked") as failure:
        runner.run("create_warehouses")
    assert failure.value.partial.metadata == {"main_warehouse": "Main Store - AKL"}


def test_main_store_failure_is_critical(runner, sim):
    runner.run_until("import_chart_of_accounts")
    sim.add_fault(kind="error", status=417, exc_type="ValidationError",
                  message="Warehouse names are locked", method="POST",
                  path="^/api/resource/Warehouse$")  # fmt: skip
    with pytest.raises(ValidationFailed, match="Warehouse names are locked"):
        runner.run("create_warehouses")


def test_pos_store_transient_failure_retries_the_step_and_a_permanent_one_is_soft(engine, sim):
    runner = StepRunner(engine, profile(), RunOptions(pos_store_enabled=False))
    runner.run_until("create_warehouses")
    runner.options = RunOptions(pos_store_enabled=True)
    sim.add_fault(kind="error", status=503, method="POST", path="^/api/resource/Warehouse$")
    with pytest.raises(EngineBusy):  # retried, then waits for the engine: never soft
        runner.run("create_warehouses")
    sim.clear_faults()
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method="POST",
                  path="^/api/resource/Warehouse$", message="no more stores")  # fmt: skip
    with pytest.raises(NonCriticalFailure, match="no more stores"):
        runner.run("create_warehouses")


def test_settings_on_a_shared_site_leave_other_values_alone(runner, engine):
    engine.update_single("Selling Settings", {"customer_group": "Commercial"})
    outcome = runner.run("configure_settings")
    assert engine.get_single("Selling Settings")["customer_group"] == "Commercial"
    assert any("left customer_group = 'Commercial'" in n for n in outcome.notes)


def test_settings_on_an_own_site_are_set(engine):
    own = StepRunner(engine, profile(shared=False), RunOptions())
    engine.update_single("Selling Settings", {"customer_group": "Commercial"})
    outcome = own.run("configure_settings")
    assert engine.get_single("Selling Settings")["customer_group"] == "Individual"
    assert outcome.notes == []


def test_merge_fills_empty_fields_only_on_shared_sites():
    plan = merge({"a": "x", "b": ""}, {"a": "y", "b": "z", "c": 1}, overwrite=False)
    assert plan.changes == {"b": "z", "c": 1}
    assert plan.kept == {"a": "x"}
    assert merge({"a": 1}, {"a": "1"}, overwrite=True).changes == {}


def test_one_open_session_even_if_engine_has_several(runner, engine):
    runner.run_until("open_pos_session")
    first = runner.metadata["pos_opening_entry"]
    again = runner.run("open_pos_session")
    assert again.metadata["pos_opening_entry"] == first
    assert not again.result["created"]


def test_walk_in_customer_is_found_not_duplicated_when_renamed_copies_exist(runner, engine):
    engine.insert("Customer", {"customer_name": "Walk-In Customer"})
    engine.insert("Customer", {"customer_name": "Walk-In Customer"})  # ERPNext: "… - 1"
    outcome = runner.run("create_walk_in_customer")
    assert outcome.metadata["walk_in_customer"] == "Walk-In Customer"
    assert engine.count("Customer", [["customer_name", "=", "Walk-In Customer"]]) == 2


@pytest.mark.parametrize(
    ("step_name", "doctype", "name"),
    [
        ("create_company", "Company", "Acme Kenya Ltd"),
        ("create_walk_in_customer", "Customer", "Walk-In Customer"),
    ],
)
def test_an_insert_that_meets_the_same_one_still_being_built_is_tried_again(
    runner, sim, engine, step_name, doctype, name
):
    """An earlier attempt (its worker lost, its answer timed out) is still building the same
    document: ERPNext answers 409 and there is nothing to read yet. Not a permanent failure."""
    runner.run_until(STEP_NAMES[STEP_NAMES.index(step_name) - 1])
    building = sim.sites[sim.default_site].in_progress.setdefault(doctype, {})
    building[name] = ""
    with pytest.raises(EngineConflict, match="being created by another request") as caught:
        runner.run(step_name)
    assert caught.value.transient
    assert caught.value.exc_type == "DuplicateEntryError"

    del building[name]  # the other request is gone: the same step, again, makes it once
    assert runner.run(step_name).result["created"] is True
    assert engine.count(doctype, [["name", "like", f"{name}%"]]) == 1
