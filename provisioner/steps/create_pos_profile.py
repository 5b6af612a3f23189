from __future__ import annotations

from typing import Any

from provisioner.steps.base import PaymentMethod, Step, StepContext, StepError, StepResult
from provisioner.steps.ensure import ensure


class CreatePosProfile(Step):
    """A POS profile for the company, whose payment methods all have an account for it."""

    name = "create_pos_profile"
    title = "Create the POS profile"
    requires = ("create_company", "import_chart_of_accounts", "create_warehouses")

    def run(self, ctx: StepContext) -> StepResult:
        company = ctx.need("company", "create_company")
        cash_account = ctx.need("cash_account", "import_chart_of_accounts")
        warehouse = ctx.metadata.get("pos_warehouse") or ctx.need(
            "main_warehouse", "create_warehouses"
        )
        methods = ctx.template.payment_methods
        for method in methods:
            ensure_payment_account(ctx, method.mode, company, cash_account)
        profile = f"{company} POS"
        doc: dict[str, Any] = {
            "name": profile,
            "__newname": profile,
            "company": company,
            "warehouse": warehouse,
            "write_off_account": ctx.need("write_off_account", "import_chart_of_accounts"),
            "write_off_cost_center": ctx.need("cost_center", "import_chart_of_accounts"),
            "cost_center": ctx.need("cost_center", "import_chart_of_accounts"),
            "payments": [payment_row(m) for m in methods],
        }
        if ctx.metadata.get("walk_in_customer"):
            doc["customer"] = ctx.metadata["walk_in_customer"]
        outcome = ensure(ctx, "POS Profile", key=[["name", "=", profile]], doc=doc)
        existing = ctx.engine.get_doc("POS Profile", outcome.name) or {}
        if existing.get("company") != company:
            raise StepError(f"POS profile {profile} exists for another company")
        return StepResult(
            result={
                "pos_profile": outcome.name,
                "created": outcome.created,
                "warehouse": warehouse,
                "payment_methods": [m.mode for m in methods],
            },
            metadata={"pos_profile": outcome.name, "payment_methods": [m.mode for m in methods]},
        )


def payment_row(method: PaymentMethod) -> dict[str, Any]:
    return {"mode_of_payment": method.mode, "default": int(method.default)}


def ensure_payment_account(ctx: StepContext, mode: str, company: str, account: str) -> None:
    """Give the Mode of Payment an account row for this company if it has none.

    The Mode of Payment is shared by the site and a PUT replaces its whole accounts table,
    so the other companies' rows are sent back unchanged, under a per-site lock.
    """
    with ctx.lock(f"Mode of Payment:{mode}"):
        doc = ctx.engine.get_doc("Mode of Payment", mode)
        if doc is None:
            raise StepError(f"Mode of Payment {mode} does not exist on the engine")
        rows = [
            {"company": r["company"], "default_account": r.get("default_account")}
            for r in doc.get("accounts") or []
        ]
        if any(r["company"] == company for r in rows):
            return
        rows.append({"company": company, "default_account": account})
        ctx.engine.update("Mode of Payment", mode, {"accounts": rows})
