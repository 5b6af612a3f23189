from __future__ import annotations

from typing import Any

from provisioner.steps.base import Check, Step, StepContext, StepError, StepResult
from provisioner.steps.checks import check_rows

# Company field -> (metadata key, Account lookup when the field is empty)
ACCOUNT_FIELDS: dict[str, tuple[str, list[list[Any]]]] = {
    "default_cash_account": ("cash_account", [["account_type", "=", "Cash"]]),
    "default_receivable_account": ("receivable_account", [["account_type", "=", "Receivable"]]),
    "write_off_account": ("write_off_account", [["account_name", "=", "Write Off"]]),
}


class ImportChartOfAccounts(Step):
    """The company's chart of accounts is there, and the accounts later steps need are known.

    ERPNext builds the chart from its template when the company is made; this step checks
    it and records the cash, receivable and write-off accounts and the cost center.
    """

    name = "import_chart_of_accounts"
    title = "Check the chart of accounts"
    requires = ("create_company",)

    def run(self, ctx: StepContext) -> StepResult:
        company = ctx.need("company", "create_company")
        doc = ctx.engine.get_doc("Company", company)
        if doc is None:
            raise StepError(f"company {company} does not exist on the engine")
        count = ctx.engine.count("Account", [["company", "=", company]])
        if count == 0:
            raise StepError(
                f"company {company} has no chart of accounts "
                f"(template {doc.get('chart_of_accounts') or 'unknown'})"
            )
        accounts: dict[str, str | None] = {}
        for company_field, (key, lookup) in ACCOUNT_FIELDS.items():
            accounts[key] = doc.get(company_field) or self._find_ledger(
                ctx, "Account", company, lookup
            )
        accounts["cost_center"] = doc.get("cost_center") or self._find_ledger(
            ctx, "Cost Center", company, []
        )
        missing = [key for key, value in accounts.items() if not value]
        if missing:
            raise StepError(f"the chart of {company} lacks: {', '.join(missing)}")
        result = {"accounts": count, "chart_of_accounts": doc.get("chart_of_accounts"), **accounts}
        return StepResult(result=result, metadata=accounts)

    def verify(self, ctx: StepContext) -> list[Check]:
        """The ledgers and the cost center recorded for later steps are there, for the company
        (one read per doctype: the chart is there when they are)."""
        must = {"company": ctx.need("company", "create_company")}
        accounts = [ctx.need(key, self.name) for key, _ in ACCOUNT_FIELDS.values()]
        return [
            *check_rows(ctx.engine, self.name, "Account", dict.fromkeys(accounts), must),
            *check_rows(
                ctx.engine, self.name, "Cost Center", [ctx.need("cost_center", self.name)], must
            ),
        ]

    @staticmethod
    def _find_ledger(
        ctx: StepContext, doctype: str, company: str, lookup: list[list[Any]]
    ) -> str | None:
        filters: list[list[Any]] = [["company", "=", company], ["is_group", "=", 0], *lookup]
        return ctx.engine.find(doctype, filters)
