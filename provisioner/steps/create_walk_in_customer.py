from __future__ import annotations

from provisioner.steps.base import Step, StepContext, StepResult
from provisioner.steps.ensure import ensure

WALK_IN = "Walk-In Customer"


class CreateWalkInCustomer(Step):
    """Customer "Walk-In Customer" exists on the site.

    Customers belong to the site, and ERPNext renames a duplicate ("… - 1") instead of
    refusing it, so the customer is looked up by customer_name first, every time, under
    a per-site lock on the name.
    """

    name = "create_walk_in_customer"
    title = "Create the walk-in customer"

    def run(self, ctx: StepContext) -> StepResult:
        outcome = ensure(
            ctx,
            "Customer",
            key=[["customer_name", "=", WALK_IN]],
            doc={"customer_name": WALK_IN, "customer_type": "Individual"},
        )
        return StepResult(
            result={"customer": outcome.name, "created": outcome.created},
            metadata={"walk_in_customer": outcome.name},
        )
