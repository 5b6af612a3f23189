from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from provisioner.engine import DuplicateEntry
from provisioner.steps.base import (
    Check,
    PaymentMethod,
    Step,
    StepContext,
    StepError,
    StepResult,
)
from provisioner.steps.checks import check_documents, doc_by_name
from provisioner.steps.ensure import ENABLED, ensure


class CreatePosProfile(Step):
    """A POS profile for the company, whose payment methods all have an account for it.

    Run again on a profile that drifted, it enables it and adds back a payment method or
    a Mode of Payment account row that went missing; what is still right is not written.
    """

    name = "create_pos_profile"
    title = "Create the POS profile"
    lock_waits = 3  # one per mode of payment (2 at most), one for the profile
    requires = ("create_company", "import_chart_of_accounts", "create_warehouses")

    def run(self, ctx: StepContext) -> StepResult:
        company = ctx.need("company", "create_company")
        cash_account = ctx.need("cash_account", "import_chart_of_accounts")
        warehouse = ctx.metadata.get("pos_warehouse") or ctx.need(
            "main_warehouse", "create_warehouses"
        )
        methods = ctx.template.payment_methods
        notes: list[str] = []
        for method in methods:
            notes.extend(ensure_payment_account(ctx, method.mode, company, cash_account))
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
        # The company is part of the key: a profile of that name for another company is
        # never found, so never written to; creating ours then fails as a duplicate.
        key = [["name", "=", profile], ["company", "=", company]]
        try:
            outcome = ensure(ctx, "POS Profile", key=key, doc=doc, must=ENABLED)
        except DuplicateEntry as exc:
            raise StepError(f"POS profile {profile} exists for another company") from exc
        notes.extend(outcome.notes)
        if not outcome.created:
            notes.extend(ensure_payment_methods(ctx, outcome.name, methods))
        return StepResult(
            result={
                "pos_profile": outcome.name,
                "created": outcome.created,
                "warehouse": warehouse,
                "payment_methods": [m.mode for m in methods],
            },
            metadata={"pos_profile": outcome.name, "payment_methods": [m.mode for m in methods]},
            notes=notes,
        )

    def verify(self, ctx: StepContext) -> list[Check]:
        """The profile exists, enabled, for the company, with its payment methods; and each
        of those Modes of Payment has an account row for the company (one read each)."""
        company = ctx.need("company", "create_company")
        profile = ctx.need("pos_profile", self.name)
        modes = list(ctx.need("payment_methods", self.name))
        must = {"company": company, **ENABLED, "payment_methods": modes}
        checks = check_documents(
            self.name, "POS Profile", [profile], partial(profile_view, ctx, profile, modes), must
        )
        for mode in modes:
            checks += check_documents(
                self.name, "Mode of Payment", [mode], partial(mode_view, ctx, mode, company),
                {"accounts_for": [company]},
            )  # fmt: skip
        return checks


def payment_row(method: PaymentMethod) -> dict[str, Any]:
    return {"mode_of_payment": method.mode, "default": int(method.default)}


def profile_view(ctx: StepContext, profile: str, modes: list[str]) -> dict[str, dict[str, Any]]:
    """The profile as verify compares it: its payment methods among the workspace's."""
    docs = doc_by_name(ctx.engine, "POS Profile", profile)
    return {
        name: {**doc, "payment_methods": [m for m in modes if m in payment_modes(doc)]}
        for name, doc in docs.items()
    }


def mode_view(ctx: StepContext, mode: str, company: str) -> dict[str, dict[str, Any]]:
    """The Mode of Payment as verify compares it: whether it has a row for the company
    (never the other companies of a shared site)."""
    docs = doc_by_name(ctx.engine, "Mode of Payment", mode)
    return {
        name: {"accounts_for": [company] if has_account_for(doc, company) else []}
        for name, doc in docs.items()
    }


def has_account_for(mode: Mapping[str, Any], company: str) -> bool:
    return any(row.get("company") == company for row in mode.get("accounts") or [])


def payment_modes(profile: Mapping[str, Any]) -> list[str]:
    return [row.get("mode_of_payment") or "" for row in profile.get("payments") or []]


def ensure_payment_account(ctx: StepContext, mode: str, company: str, account: str) -> list[str]:
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
        if has_account_for(doc, company):
            return []
        rows.append({"company": company, "default_account": account})
        ctx.engine.update("Mode of Payment", mode, {"accounts": rows})
    return [f"Mode of Payment {mode}: added the account {account} for {company}"]


def ensure_payment_methods(
    ctx: StepContext, profile: str, methods: tuple[PaymentMethod, ...]
) -> list[str]:
    """Add back the workspace's payment methods a found profile lacks (rows a person added
    stay). A PUT replaces the whole table, so the present rows are sent back; there stays
    exactly one default."""
    with ctx.lock(f"POS Profile:{profile}"):
        doc = ctx.engine.get_doc("POS Profile", profile) or {}
        present = doc.get("payments") or []
        missing = [m for m in methods if m.mode not in payment_modes(doc)]
        if not missing:
            return []
        has_default = any(int(row.get("default") or 0) for row in present)
        rows = [
            *({"mode_of_payment": r["mode_of_payment"], "default": int(r.get("default") or 0)}
              for r in present),
            *({**payment_row(m), "default": int(m.default and not has_default)} for m in missing),
        ]  # fmt: skip
        ctx.engine.update("POS Profile", profile, {"payments": rows})
    return [f"POS Profile {profile}: added back {', '.join(m.mode for m in missing)}"]
