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


def resolve(
    plan: str, custom_steps: Sequence[str] | None, done_before: Collection[str] = ()
) -> tuple[str, ...]:
    """The steps of a run in plan order.

    A custom plan lists its steps; each step's prerequisites must be in the list or have
    completed in an earlier run of the tenant (their results are in its metadata).
    """
    if plan != CUSTOM:
        if custom_steps:
            raise PlanError(
                "steps", f"steps are chosen by the plan {plan}; use CUSTOM to list them"
            )
        return PLANS[plan]
    if not custom_steps:
        raise PlanError("steps", "a CUSTOM plan needs at least one step")
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
