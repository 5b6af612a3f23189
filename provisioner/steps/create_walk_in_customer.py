from __future__ import annotations

from provisioner.steps.base import Check, Step, StepContext, StepResult
from provisioner.steps.checks import check_rows
from provisioner.steps.ensure import ENABLED, ensure

WALK_IN = "Walk-In Customer"


class CreateWalkInCustomer(Step):
    """Customer "Walk-In Customer" exists on the site.

    Customers belong to the site, and ERPNext renames a duplicate ("… - 1") instead of
    refusing it, so the customer is looked up by customer_name first, every time, under
    a per-site lock on the name.
    """

    name = "create_walk_in_customer"
    title = "Create the walk-in customer"
    lock_waits = 1

    def run(self, ctx: StepContext) -> StepResult:
        outcome = ensure(
            ctx,
            "Customer",
            key=[["customer_name", "=", WALK_IN]],
            doc={"customer_name": WALK_IN, "customer_type": "Individual"},
            must=ENABLED,
        )
        return StepResult(
            result={"customer": outcome.name, "created": outcome.created},
            metadata={"walk_in_customer": outcome.name},
            notes=outcome.notes,
        )

    def verify(self, ctx: StepContext) -> list[Check]:
        """The customer recorded still carries the walk-in name and is enabled. It is
        site-wide: on a shared site, disabling it stops every company's point of sale."""
        name = ctx.need("walk_in_customer", self.name)
        by_name = [["customer_name", "=", WALK_IN]]
        return check_rows(ctx.engine, self.name, "Customer", [name], ENABLED, filters=by_name)
