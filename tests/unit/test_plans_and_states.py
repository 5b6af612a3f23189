"""Plans and the state machine: pure logic, no services."""

from __future__ import annotations

import itertools

import pytest

from provisioner.errors import InvalidTransition, PlanError
from provisioner.models import JobStatus, RunStatus, StepStatus
from provisioner.orchestration import plans, states
from provisioner.steps import STEP_NAMES


def test_named_plans():
    assert plans.resolve("FULL_POS", None) == STEP_NAMES
    assert plans.resolve("BASIC", None) == (
        "check_engine",
        "create_company",
        "import_chart_of_accounts",
        "create_warehouses",
    )


def test_custom_plan_is_put_in_plan_order():
    chosen = plans.resolve("CUSTOM", ["create_warehouses", "create_company"])
    assert chosen == ("create_company", "create_warehouses")


@pytest.mark.parametrize(
    ("steps", "done_before", "message"),
    [
        (None, (), "needs at least one step"),
        (["create_pos_profile"], (), "create_pos_profile needs create_company"),
        (["nope"], (), "unknown steps: nope"),
        (["create_company", "create_company"], (), "listed twice"),
    ],
)
def test_custom_plan_errors_name_the_field(steps, done_before, message):
    with pytest.raises(PlanError, match=message) as caught:
        plans.resolve("CUSTOM", steps, done_before)
    assert caught.value.field == "steps"


def test_custom_plan_dependencies_may_be_met_by_earlier_runs():
    done = {"create_company", "import_chart_of_accounts", "create_warehouses"}
    assert plans.resolve("CUSTOM", ["create_pos_profile"], done) == ("create_pos_profile",)


@pytest.mark.parametrize(
    ("drifted", "unsatisfied", "steps"),
    [
        ({"create_walk_in_customer"}, set(), ("create_walk_in_customer",)),
        ({"open_pos_session", "configure_settings"}, set(),
         ("configure_settings", "open_pos_session")),
        # a profile whose warehouse drifted too: both, in plan order
        ({"create_pos_profile", "create_warehouses"}, set(),
         ("create_warehouses", "create_pos_profile")),
        # what a drifted step needs that is not in place comes with it, and what that needs
        ({"open_pos_session"}, {"create_pos_profile", "create_warehouses"},
         ("create_warehouses", "create_pos_profile", "open_pos_session")),
    ],
)  # fmt: skip
def test_a_repair_is_the_drifted_steps_and_what_they_need(drifted, unsatisfied, steps):
    satisfied = set(STEP_NAMES) - drifted - unsatisfied
    assert plans.repair_steps(drifted, satisfied) == steps
    assert plans.resolve(plans.REPAIR, list(steps), satisfied) == steps
    assert plans.REPAIR not in plans.PLAN_NAMES  # never started by name


def test_named_plan_refuses_a_step_list():
    with pytest.raises(PlanError, match="use CUSTOM"):
        plans.resolve("BASIC", ["create_company"])


ALLOWED_RUN = {
    (RunStatus.PENDING, RunStatus.IN_PROGRESS),
    (RunStatus.PENDING, RunStatus.CANCELLED),
    (RunStatus.PENDING, RunStatus.FAILED),
    (RunStatus.IN_PROGRESS, RunStatus.COMPLETED),
    (RunStatus.IN_PROGRESS, RunStatus.PARTIAL),
    (RunStatus.IN_PROGRESS, RunStatus.FAILED),
    (RunStatus.IN_PROGRESS, RunStatus.CANCELLED),
    (RunStatus.FAILED, RunStatus.PENDING),
    (RunStatus.PARTIAL, RunStatus.PENDING),
    (RunStatus.CANCELLED, RunStatus.PENDING),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(RunStatus, RunStatus)))
def test_every_run_transition(current, target):
    if (current, target) in ALLOWED_RUN:
        states.check(states.RUN_TRANSITIONS, "run", current, target)
    else:
        with pytest.raises(InvalidTransition) as caught:
            states.check(states.RUN_TRANSITIONS, "run", current, target)
        assert caught.value.current == current


def test_every_step_status_has_a_rule():
    assert set(states.STEP_TRANSITIONS) == set(StepStatus)
    assert set(states.RUN_TRANSITIONS) == set(RunStatus)
    assert set(states.JOB_TRANSITIONS) == set(JobStatus)
    assert states.STEP_TRANSITIONS[StepStatus.COMPLETED] == {StepStatus.RUNNING}
