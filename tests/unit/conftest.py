"""Unit-test fixtures: steps run in-process against the simulator, no database, no Celery."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from provisioner import catalog
from provisioner.steps import BY_NAME
from provisioner.steps.base import Check, RunOptions, StepContext, StepResult, TenantProfile


class StepRunner:
    """Runs steps one after another the way a run does, carrying metadata between them."""

    def __init__(self, engine, tenant: TenantProfile, options: RunOptions) -> None:
        self.engine, self.tenant, self.options = engine, tenant, options
        self.metadata: dict[str, Any] = {}
        self.template = catalog.template_for("retail")
        self.completed: list[str] = []  # steps that succeeded, in plan order

    def context(self) -> StepContext:
        return StepContext(
            engine=self.engine,
            tenant=self.tenant,
            options=self.options,
            template=self.template,
            metadata=dict(self.metadata),
            lock=lambda _name: nullcontext(),
            health_ttl=0,
        )

    def run(self, name: str) -> StepResult:
        outcome = BY_NAME[name].run(self.context())
        self.metadata.update(outcome.metadata)
        self.completed = [n for n in BY_NAME if n in {*self.completed, name}]
        return outcome

    def verify(self) -> list[Check]:
        """What a verification of the workspace reports: every completed step's checks."""
        return [check for name in self.completed for check in BY_NAME[name].verify(self.context())]

    def run_until(self, last: str) -> None:
        for name in BY_NAME:
            self.run(name)
            if name == last:
                return


def profile(name: str = "Acme Kenya Ltd", *, country: str = "KE", shared: bool = True):
    c = catalog.countries()[country]
    return TenantProfile(
        name=name,
        slug=name.lower().replace(" ", "-"),
        country_code=country,
        country=c.name,
        currency=c.currency,
        timezone=c.timezone,
        wanted_chart=c.chart,
        shared_site=shared,
    )


@pytest.fixture
def runner(engine) -> StepRunner:
    return StepRunner(engine, profile(), RunOptions(include_demo_data=True))
