"""Which steps a run is made of: the named plans, and checked custom ones."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from provisioner.errors import PlanError
from provisioner.steps import BY_NAME, STEP_NAMES

PLANS: dict[str, tuple[str, ...]] = {
    "FULL_POS": STEP_NAMES,
    "BASIC": STEP_NAMES[:4],
}
CUSTOM = "CUSTOM"
PLAN_NAMES = (*PLANS, CUSTOM)
# The drifted steps of a workspace and what they need (`repair_steps`): started by
# `orchestration.verifications.repair` only, never named by a caller, so not in PLAN_NAMES.
REPAIR = "REPAIR"


def resolve(
    plan: str, custom_steps: Sequence[str] | None, done_before: Collection[str] = ()
) -> tuple[str, ...]:
    """The steps of a run in plan order.

    A CUSTOM (or REPAIR) plan lists its steps; each step's prerequisites must be in the list or have
    completed in an earlier run of the tenant (their results are in its metadata).
    """
    if plan not in (CUSTOM, REPAIR):
        if custom_steps:
            raise PlanError(
                "steps", f"steps are chosen by the plan {plan}; use CUSTOM to list them"
            )
        return PLANS[plan]
    if not custom_steps:
        raise PlanError("steps", f"a {plan} plan needs at least one step")
    unknown = [s for s in custom_steps if s not in BY_NAME]
    if unknown:
        raise PlanError("steps", f"unknown steps: {', '.join(unknown)}")
    if len(set(custom_steps)) != len(custom_steps):
        raise PlanError("steps", "a step is listed twice")
    chosen = set(custom_steps)
    missing = {
        name: [r for r in BY_NAME[name].requires if r not in chosen and r not in done_before]
        for name in custom_steps
    }
    problems = [f"{name} needs {', '.join(reqs)}" for name, reqs in missing.items() if reqs]
    if problems:
        raise PlanError("steps", "; ".join(problems))
    return tuple(name for name in STEP_NAMES if name in chosen)


def repair_steps(drifted: Collection[str], satisfied: Collection[str]) -> tuple[str, ...]:
    """The drifted steps and every step they require (directly or not) that is not
    `satisfied` (completed before and not drifted), in plan order."""
    chosen: set[str] = set()
    wanted = list(drifted)
    while wanted:
        name = wanted.pop()
        if name not in chosen:
            chosen.add(name)
            wanted.extend(r for r in BY_NAME[name].requires if r not in satisfied)
    return tuple(name for name in STEP_NAMES if name in chosen)
