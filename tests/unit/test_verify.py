"""Verify and repair against the simulator: drift made through the engine's own REST API is
reported as exactly the checks it breaks, and a run of the drifted steps mends exactly it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from provisioner.engine import EngineClient
from provisioner.steps import STEP_NAMES, open_pos_session
from provisioner.steps.base import Check, CheckState, RunOptions, StepError
from provisioner.steps.configure_settings import RELIED_ON
from tests.unit.conftest import StepRunner, profile

ACME = "Acme Kenya Ltd"
PROFILE = f"{ACME} POS"
WRITES = ("POST", "PUT", "DELETE")
READ_BUDGET = 12  # engine reads one verification of a FULL_POS retail workspace may make
RETAIL_STOCK = {"item_naming_by": "Item Code", "valuation_method": "FIFO", "stock_uom": "Nos",
                "show_barcode_field": 1}  # fmt: skip
PROFILE_MUST = {"company": ACME, "disabled": 0, "payment_methods": ["Cash", "Credit Card"]}
# (step, doctype, name) of every check of a FULL_POS retail workspace, demo items and POS store on
EVERY_CHECK = {
    ("create_company", "Company", ACME),
    ("import_chart_of_accounts", "Account", "Cash - AKL"),
    ("import_chart_of_accounts", "Account", "Debtors - AKL"),
    ("import_chart_of_accounts", "Account", "Write Off - AKL"),
    ("import_chart_of_accounts", "Cost Center", "Main - AKL"),
    ("create_warehouses", "Warehouse", "Main Store - AKL"),
    ("create_warehouses", "Warehouse", "POS Store - AKL"),
    ("configure_settings", "Selling Settings", "Selling Settings"),
    ("configure_settings", "Stock Settings", "Stock Settings"),
    *(("create_demo_items", "Item", f"AKL-{code}") for code in
      ("TSHIRT", "MUG", "NOTEBOOK", "GIFTWRAP")),
    ("create_walk_in_customer", "Customer", "Walk-In Customer"),
    ("create_pos_profile", "POS Profile", PROFILE),
    ("create_pos_profile", "Mode of Payment", "Cash"),
    ("create_pos_profile", "Mode of Payment", "Credit Card"),
}  # fmt: skip


@pytest.fixture
def provisioned(runner: StepRunner) -> StepRunner:
    """A FULL_POS retail workspace (demo items, POS store) on a shared site."""
    for name in STEP_NAMES:
        runner.run(name)
    return runner


def key(check: Check) -> tuple[str, str, str]:
    return check.step, check.doctype, check.name


def drifted(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.state != CheckState.OK]


def writes_during(sim, action: Callable[[], Any]) -> list[tuple[str, str]]:
    """The engine writes (POST, PUT, DELETE) `action` made, from the simulator's call log."""
    since = sim.calls()[-1]["seq"] if sim.calls() else 0
    action()
    return [(c["method"], c["path"]) for c in sim.calls(since) if c["method"] in WRITES]


def repair(runner: StepRunner, checks: list[Check]) -> None:
    """What a REPAIR run does: exactly the drifted steps again, with `repair` on."""
    runner.options = replace(runner.options, repair=True)
    for name in dict.fromkeys(c.step for c in checks):
        runner.run(name)


def inventory(engine: EngineClient) -> dict[str, int]:
    """How many of each document the workspace has: a repair must not add any."""
    of_acme = [["company", "=", ACME]]
    counts = {doctype: engine.count(doctype, of_acme) for doctype in ("Warehouse", "POS Profile")}
    counts["Walk-In Customer"] = engine.count("Customer", [["customer_name", "like", "Walk-In%"]])
    counts["Item"] = engine.count("Item", [["item_code", "like", "AKL-%"]])
    counts["Item Price"] = engine.count("Item Price", [["item_code", "like", "AKL-%"]])
    for mode in ("Cash", "Credit Card"):
        rows = engine.get_doc("Mode of Payment", mode)["accounts"]
        counts[f"{mode} rows"] = sum(r["company"] == ACME for r in rows)
    counts["Payment methods"] = len(engine.get_doc("POS Profile", PROFILE)["payments"])
    return counts


def end_the_session(engine: EngineClient, runner: StepRunner) -> None:
    """The day's session over (cancelled: the simulator has no POS Closing Entry)."""
    engine.update("POS Opening Entry", runner.metadata["pos_opening_entry"], {"docstatus": 2})


# -- a whole workspace -----------------------------------------------------------------------


def test_a_fresh_workspace_verifies_all_ok(provisioned):
    checks = provisioned.verify()
    assert {key(c) for c in checks} == EVERY_CHECK
    assert len(checks) == len(EVERY_CHECK)
    assert drifted(checks) == []
    by_key = {key(c): c for c in checks}
    profile_check = by_key[("create_pos_profile", "POS Profile", PROFILE)]
    assert profile_check.expected == profile_check.actual == PROFILE_MUST
    stock = by_key[("configure_settings", "Stock Settings", "Stock Settings")]
    assert stock.expected == stock.actual == RETAIL_STOCK
    # JSON-friendly: what orchestration will store
    assert json.loads(json.dumps([c.as_dict() for c in checks]))[0]["state"] == "ok"


def test_verification_reads_at_most_twelve_times_and_writes_nothing(provisioned, sim):
    since = sim.calls()[-1]["seq"]
    provisioned.verify()
    calls = sim.calls(since)
    assert {c["method"] for c in calls} == {"GET"}
    assert len(calls) <= READ_BUDGET
    assert len(calls) == 11  # one per document kind, two settings, one per Mode of Payment
    assert len({c["path"] for c in calls}) == 11  # nothing read twice


def test_a_rerun_of_every_step_on_a_whole_workspace_writes_nothing(provisioned, sim):
    assert writes_during(sim, lambda: [provisioned.run(name) for name in STEP_NAMES]) == []


def test_an_open_session_closed_is_not_drift(provisioned, engine):
    end_the_session(engine, provisioned)
    assert drifted(provisioned.verify()) == []


# -- drift, one kind at a time ---------------------------------------------------------------


def switch_valuation(engine: EngineClient, runner: StepRunner) -> None:
    engine.update_single("Stock Settings", {"valuation_method": "Moving Average"})


def disable(doctype: str, name: str) -> Callable[[EngineClient, StepRunner], None]:
    def inject(engine: EngineClient, runner: StepRunner) -> None:
        if doctype == "POS Profile":  # refused while a session is open (see the contract)
            end_the_session(engine, runner)
        engine.update(doctype, name, {"disabled": 1})

    return inject


def drop_card_account(engine: EngineClient, runner: StepRunner) -> None:
    rows = engine.get_doc("Mode of Payment", "Credit Card")["accounts"]
    kept = [{"company": r["company"], "default_account": r["default_account"]}
            for r in rows if r["company"] != ACME]  # fmt: skip
    engine.update("Mode of Payment", "Credit Card", {"accounts": kept})


def drop_card_payment(engine: EngineClient, runner: StepRunner) -> None:
    engine.update("POS Profile", PROFILE, {"payments": [{"mode_of_payment": "Cash", "default": 1}]})


def delete_mug(engine: EngineClient, runner: StepRunner) -> None:
    engine.delete("Item", "AKL-MUG")


DRIFTS = {
    "a stock setting switched": (
        switch_valuation,
        Check("configure_settings", "Stock Settings", "Stock Settings", CheckState.CHANGED,
              RETAIL_STOCK, {**RETAIL_STOCK, "valuation_method": "Moving Average"},
              "Stock Settings: valuation_method is Moving Average, the point of sale needs FIFO"),
        ("PUT", "/api/resource/Stock Settings/Stock Settings"),
    ),
    "the walk-in customer disabled": (
        disable("Customer", "Walk-In Customer"),
        Check("create_walk_in_customer", "Customer", "Walk-In Customer", CheckState.CHANGED,
              {"disabled": 0}, {"disabled": 1}, "Customer Walk-In Customer is disabled"),
        ("PUT", "/api/resource/Customer/Walk-In Customer"),
    ),
    "a warehouse disabled": (
        disable("Warehouse", "Main Store - AKL"),
        Check("create_warehouses", "Warehouse", "Main Store - AKL", CheckState.CHANGED,
              {"company": ACME, "disabled": 0}, {"company": ACME, "disabled": 1},
              "Warehouse Main Store - AKL is disabled"),
        ("PUT", "/api/resource/Warehouse/Main Store - AKL"),
    ),
    "the POS profile disabled": (
        disable("POS Profile", PROFILE),
        Check("create_pos_profile", "POS Profile", PROFILE, CheckState.CHANGED, PROFILE_MUST,
              {**PROFILE_MUST, "disabled": 1}, f"POS Profile {PROFILE} is disabled"),
        ("PUT", f"/api/resource/POS Profile/{PROFILE}"),
    ),
    "a payment method removed from the profile": (
        drop_card_payment,
        Check("create_pos_profile", "POS Profile", PROFILE, CheckState.CHANGED, PROFILE_MUST,
              {**PROFILE_MUST, "payment_methods": ["Cash"]},
              f"POS Profile {PROFILE} has no payment method Credit Card"),
        ("PUT", f"/api/resource/POS Profile/{PROFILE}"),
    ),
    "a Mode of Payment account row removed": (
        drop_card_account,
        Check("create_pos_profile", "Mode of Payment", "Credit Card", CheckState.CHANGED,
              {"accounts_for": [ACME]}, {"accounts_for": []},
              f"Mode of Payment Credit Card has no account for {ACME}"),
        ("PUT", "/api/resource/Mode of Payment/Credit Card"),
    ),
    "a demo item deleted": (
        delete_mug,
        Check("create_demo_items", "Item", "AKL-MUG", CheckState.MISSING, {"disabled": 0}, None,
              "Item AKL-MUG is missing"),
        ("POST", "/api/resource/Item"),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("inject", "expected", "write"), DRIFTS.values(), ids=DRIFTS.keys())
def test_drift_is_reported_and_repaired_exactly(provisioned, engine, sim, inject, expected, write):
    before = inventory(engine)
    inject(engine, provisioned)

    checks = drifted(provisioned.verify())
    assert checks == [expected]

    assert writes_during(sim, lambda: repair(provisioned, checks)) == [write]
    assert drifted(provisioned.verify()) == []
    assert inventory(engine) == before


def test_every_drift_at_once_is_reported_and_repaired_in_one_run(provisioned, engine, sim):
    before = inventory(engine)
    kinds = ("a stock setting switched", "the walk-in customer disabled", "a warehouse disabled",
             "the POS profile disabled", "a Mode of Payment account row removed",
             "a demo item deleted")  # fmt: skip
    for kind in kinds:
        DRIFTS[kind][0](engine, provisioned)

    checks = drifted(provisioned.verify())
    assert sorted(checks, key=key) == sorted((DRIFTS[k][1] for k in kinds), key=key)

    writes = writes_during(sim, lambda: repair(provisioned, checks))
    assert sorted(writes) == sorted(DRIFTS[k][2] for k in kinds)
    assert drifted(provisioned.verify()) == []
    assert inventory(engine) == before
    assert engine.get_doc("POS Profile", PROFILE)["disabled"] == 0


def test_a_profile_of_that_name_for_another_company_is_not_touched(runner, engine, sim):
    runner.run_until("create_walk_in_customer")
    engine.insert("POS Profile", {
        "name": PROFILE, "company": "Engine Default Ltd", "warehouse": "Stores - EDL",
        "write_off_account": "Write Off - EDL", "write_off_cost_center": "Main - EDL",
        "payments": [{"mode_of_payment": "Cash", "default": 1}], "disabled": 1,
    })  # fmt: skip
    with pytest.raises(StepError, match="exists for another company"):
        runner.run("create_pos_profile")
    assert engine.get_doc("POS Profile", PROFILE)["disabled"] == 1


# -- an engine that cannot be read -------------------------------------------------------------


def test_an_engine_answering_503_gives_unknown_checks(provisioned, sim):
    sim.add_fault(kind="error", status=503, exc_type="SessionStopped", message="Maintenance")
    checks = provisioned.verify()
    assert {key(c) for c in checks} == EVERY_CHECK
    assert {c.state for c in checks} == {CheckState.UNKNOWN}
    stock = next(c for c in checks if c.doctype == "Stock Settings")
    assert stock.message == "Stock Settings could not be read: Maintenance"
    assert stock.expected == RETAIL_STOCK
    assert stock.actual is None


def test_an_engine_that_times_out_gives_unknown_checks(provisioned, sim):
    provisioned.engine = EngineClient(provisioned.engine.credentials, read_timeout=0.05)
    sim.add_fault(kind="timeout", seconds=0.3)
    checks = provisioned.verify()
    assert {c.state for c in checks} == {CheckState.UNKNOWN}
    assert all("could not be read: no answer in time" in c.message for c in checks)


def test_one_unreadable_document_leaves_the_others_checked(provisioned, sim):
    sim.add_fault(kind="error", status=502, path="Stock Settings")
    checks = provisioned.verify()
    unknown = [key(c) for c in checks if c.state == CheckState.UNKNOWN]
    assert unknown == [("configure_settings", "Stock Settings", "Stock Settings")]
    assert drifted(checks) == [c for c in checks if key(c) in unknown]


# -- settings on a shared site ---------------------------------------------------------------


def test_another_tenants_setting_is_not_this_workspaces_drift(engine, sim):
    engine.update_single("Selling Settings", {"customer_group": "Commercial"})  # another tenant
    runner = StepRunner(engine, profile(), RunOptions(include_demo_data=True))
    for name in STEP_NAMES:
        runner.run(name)
    assert "customer_group" not in runner.metadata[RELIED_ON]["Selling Settings"]
    assert drifted(runner.verify()) == []

    engine.update_single("Selling Settings", {"customer_group": "Government", "so_required": "Yes"})
    (check,) = drifted(runner.verify())
    assert (check.doctype, check.actual["so_required"]) == ("Selling Settings", "Yes")
    assert "customer_group" not in check.expected

    plain = runner.run("configure_settings")  # no repair: behaviour as before, left alone
    assert plain.result["Selling Settings"] == {
        "changed": {}, "kept": {"customer_group": "Government", "so_required": "Yes"},
    }  # fmt: skip
    assert drifted(runner.verify()) == [check]

    runner.options = replace(runner.options, repair=True)
    mended = runner.run("configure_settings")
    assert mended.result["Selling Settings"]["changed"] == {"so_required": "No"}
    assert engine.get_single("Selling Settings")["customer_group"] == "Government"
    assert drifted(runner.verify()) == []


def test_on_an_own_site_every_template_setting_is_relied_on(engine):
    engine.update_single("Selling Settings", {"customer_group": "Commercial"})
    own = StepRunner(engine, profile(shared=False), RunOptions())
    own.run_until("configure_settings")
    engine.update_single("Selling Settings", {"customer_group": "Government"})
    (check,) = drifted(own.verify())
    assert check.message == (
        "Selling Settings: customer_group is Government, the point of sale needs Individual"
    )


def test_settings_relied_on_unrecorded_are_unknown_on_a_shared_site(provisioned):
    del provisioned.metadata[RELIED_ON]  # a workspace provisioned before they were recorded
    checks = [c for c in provisioned.verify() if c.step == "configure_settings"]
    assert [(c.doctype, c.state) for c in checks] == [
        ("Selling Settings", CheckState.UNKNOWN), ("Stock Settings", CheckState.UNKNOWN),
    ]  # fmt: skip
    assert "run configure_settings again" in checks[0].message


# -- the POS session -------------------------------------------------------------------------


def test_the_session_starts_on_the_workspaces_clock(runner, engine, monkeypatch):
    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 3, 1, 21, 30, tzinfo=UTC).astimezone(tz)

    monkeypatch.setattr(open_pos_session, "datetime", Clock)
    runner.run_until("open_pos_session")
    entry = engine.get_doc("POS Opening Entry", runner.metadata["pos_opening_entry"])
    assert entry["period_start_date"] == "2026-03-02 00:30:00"  # Nairobi is UTC+3
