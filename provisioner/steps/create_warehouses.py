from __future__ import annotations

from provisioner.steps.base import Check, Step, StepContext, StepResult, non_critical
from provisioner.steps.checks import check_rows
from provisioner.steps.ensure import ENABLED, Ensured, ensure

MAIN_STORE = "Main Store"
POS_STORE = "POS Store"


class CreateWarehouses(Step):
    """ "Main Store" (critical) and, if enabled, "POS Store" (not critical) for the company."""

    name = "create_warehouses"
    title = "Create the warehouses"
    lock_waits = 2  # one per warehouse
    requires = ("create_company",)

    def run(self, ctx: StepContext) -> StepResult:
        company = ctx.need("company", "create_company")
        abbr = ctx.need("abbr", "create_company")
        main = ensure_warehouse(ctx, MAIN_STORE, company, abbr)
        done = StepResult(result={"main_store": main.name}, metadata={"main_warehouse": main.name})
        done.notes.extend(main.notes)
        if ctx.options.pos_store_enabled:
            with non_critical(f"the {POS_STORE} could not be made", done):
                pos = ensure_warehouse(ctx, POS_STORE, company, abbr)
            done.result["pos_store"] = pos.name
            done.metadata["pos_warehouse"] = pos.name
            done.notes.extend(pos.notes)
        else:
            done.notes.append(f"{POS_STORE} not made: pos_store_enabled is off")
        return done

    def verify(self, ctx: StepContext) -> list[Check]:
        """The warehouses made exist, for the company, enabled (one read for all)."""
        names = [ctx.need("main_warehouse", self.name)]
        if ctx.metadata.get("pos_warehouse"):
            names.append(ctx.metadata["pos_warehouse"])
        must = {"company": ctx.need("company", "create_company"), **ENABLED}
        return check_rows(ctx.engine, self.name, "Warehouse", names, must)


def ensure_warehouse(ctx: StepContext, label: str, company: str, abbr: str) -> Ensured:
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
        must=ENABLED,
    )
