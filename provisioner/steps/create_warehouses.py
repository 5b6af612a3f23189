from __future__ import annotations

from provisioner.steps.base import Step, StepContext, StepResult, non_critical
from provisioner.steps.ensure import ensure

MAIN_STORE = "Main Store"
POS_STORE = "POS Store"


class CreateWarehouses(Step):
    """ "Main Store" (critical) and, if enabled, "POS Store" (not critical) for the company."""

    name = "create_warehouses"
    title = "Create the warehouses"
    requires = ("create_company",)

    def run(self, ctx: StepContext) -> StepResult:
        company = ctx.need("company", "create_company")
        abbr = ctx.need("abbr", "create_company")
        main = ensure_warehouse(ctx, MAIN_STORE, company, abbr)
        done = StepResult(result={"main_store": main}, metadata={"main_warehouse": main})
        if ctx.options.pos_store_enabled:
            with non_critical(ctx, f"the {POS_STORE} could not be made", done):
                pos = ensure_warehouse(ctx, POS_STORE, company, abbr)
            done.result["pos_store"] = pos
            done.metadata["pos_warehouse"] = pos
        else:
            done.notes.append(f"{POS_STORE} not made: pos_store_enabled is off")
        return done


def ensure_warehouse(ctx: StepContext, label: str, company: str, abbr: str) -> str:
    # Always send the company: without it ERPNext silently uses the site's default company.
    return ensure(
        ctx,
        "Warehouse",
        key=[["warehouse_name", "=", label], ["company", "=", company]],
        doc={
            "warehouse_name": label,
            "company": company,
            "parent_warehouse": f"All Warehouses - {abbr}",
        },
    ).name
