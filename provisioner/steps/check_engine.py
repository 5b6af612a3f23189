from __future__ import annotations

from provisioner.engine.health import health_cache
from provisioner.steps.base import Check, Step, StepContext, StepResult


class CheckEngine(Step):
    """The engine answers and the credentials work (cached for a short while)."""

    name = "check_engine"
    title = "Check the ERPNext engine"

    def run(self, ctx: StepContext) -> StepResult:
        health = health_cache.check(ctx.engine, ctx.health_ttl)
        return StepResult(
            result={
                "user": health.user,
                "setup_complete": health.setup_complete,
                "cached": health.cached,
            },
            metadata={"engine_user": health.user},
        )

    def verify(self, ctx: StepContext) -> list[Check]:
        """Nothing of the workspace's to keep: an engine that does not answer shows as
        `unknown` on the other steps' checks, which say why."""
        return []
