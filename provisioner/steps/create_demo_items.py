from __future__ import annotations

from provisioner.steps.base import Check, RunOptions, Step, StepContext, StepResult
from provisioner.steps.checks import check_rows
from provisioner.steps.ensure import ENABLED, ensure

ITEM_GROUP = "Products"
UOM = "Nos"


class CreateDemoItems(Step):
    """A few demo items to sell, only when asked for (`include_demo_data`).

    Items belong to the whole site, so their codes carry the company's abbreviation.
    """

    name = "create_demo_items"
    title = "Create demo items"
    # One ensure (look up, create or restore: up to 4 calls, one lock) per item; the
    # templates have 4 items at most.
    engine_calls = 16
    lock_waits = 4
    critical = False
    optional = True
    requires = ("create_company",)

    def skip_reason(self, options: RunOptions) -> str | None:
        return None if options.include_demo_data else "include_demo_data is off"

    def run(self, ctx: StepContext) -> StepResult:
        abbr = ctx.need("abbr", "create_company")
        made: list[str] = []
        found: list[str] = []
        notes: list[str] = []
        for item in ctx.template.demo_items:
            code = f"{abbr}-{item.code}"
            outcome = ensure(
                ctx,
                "Item",
                key=[["item_code", "=", code]],
                doc={
                    "item_code": code,
                    "item_name": item.name,
                    "item_group": ITEM_GROUP,
                    "stock_uom": UOM,
                    "is_stock_item": int(item.stock_item),
                    "standard_rate": item.rate,
                },
                must=ENABLED,
            )
            (made if outcome.created else found).append(outcome.name)
            notes.extend(outcome.notes)
        return StepResult(
            result={"items": made + found, "created": len(made)},
            metadata={"demo_items": made + found},
            notes=notes,
        )

    def verify(self, ctx: StepContext) -> list[Check]:
        """The demo items made (none when the step was skipped) exist, enabled."""
        items = ctx.metadata.get("demo_items") or []
        return check_rows(ctx.engine, self.name, "Item", items, ENABLED) if items else []
