"""What ERPNext does beyond the declarations of `doctypes`, one controller per doctype.

A controller names a new document, fills defaults, validates against the site, and runs
side effects (a company's chart of accounts, an item's price). Every method runs under
the site's lock.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import ClassVar

from provisioner.simulator import charts
from provisioner.simulator.errors import (
    ServerError,
    ValidationError,
    missing_link,
)
from provisioner.simulator.store import Doc, SiteData

COMPANY_WAREHOUSES = ("Finished Goods", "Goods In Transit", "Stores", "Work In Progress")


class Controller:
    doctype: ClassVar[str] = ""
    autoname_fallback: ClassVar[str | None] = None
    # Doctypes whose documents linking to this one `on_trash` deletes with it: they do not
    # stop the delete (Frappe checks links after on_trash).
    cascades: ClassVar[tuple[str, ...]] = ()

    def before_insert(self, site: SiteData, doc: Doc) -> None:
        """Fill defaults and the name."""

    def validate(self, site: SiteData, doc: Doc, old: Doc | None) -> None:
        """Refuse what ERPNext refuses, beyond mandatory fields, links and selects."""

    def after_insert(self, site: SiteData, doc: Doc) -> None:
        """Side effects of a new document."""

    def on_submit(self, site: SiteData, doc: Doc) -> None:
        """Side effects of docstatus 0 -> 1."""

    def on_trash(self, site: SiteData, doc: Doc) -> None:
        """Refuse or cascade a delete (links from other documents are checked before)."""


def default_company(site: SiteData) -> str | None:
    return site.single("Global Defaults").get("default_company")


def company_abbr(site: SiteData, company: str) -> str:
    doc = site.get("Company", company)
    if doc is None:
        raise missing_link("Company", company)
    return doc["abbr"]


def initials(name: str) -> str:
    return "".join(word[0] for word in name.split() if word).upper()


class CompanyController(Controller):
    doctype = "Company"
    cascades = ("Account", "Cost Center", "Warehouse", "Sales Taxes and Charges Template",
                "Purchase Taxes and Charges Template")  # fmt: skip

    def before_insert(self, site: SiteData, doc: Doc) -> None:
        doc.setdefault("abbr", initials(doc.get("company_name") or ""))
        doc.setdefault("chart_of_accounts", charts.STANDARD)
        doc.setdefault("create_chart_of_accounts_based_on", "Standard Template")
        doc.setdefault("country", site.single("System Settings").get("country"))

    def validate(self, site: SiteData, doc: Doc, old: Doc | None) -> None:
        if old is None and not site.exists("Warehouse Type", "Transit"):
            raise missing_link("Warehouse Type", "Transit")
        abbr = doc["abbr"]
        if any(
            c["abbr"] == abbr and c["name"] != doc["name"]
            for c in site.table(self.doctype).values()
        ):
            raise ValidationError("Abbreviation already used for another company")
        offered = charts.charts_for_country(doc.get("country") or "")
        if old is None and doc["chart_of_accounts"] not in offered:
            raise ServerError("IndexError", "list index out of range")

    def after_insert(self, site: SiteData, doc: Doc) -> None:
        company, abbr = doc["name"], doc["abbr"]
        site.known("Currency", doc["default_currency"])["enabled"] = 1
        self._chart(site, doc)
        root_center = f"{company} - {abbr}"  # ERPNext suffixes the root one too
        for name, parent, group in ((company, None, 1), ("Main", root_center, 0)):
            site.put("Cost Center", {
                "name": f"{name} - {abbr}", "cost_center_name": name, "company": company,
                "is_group": group, "parent_cost_center": parent,
            })  # fmt: skip
        root = f"All Warehouses - {abbr}"
        site.put("Warehouse", {"name": root, "warehouse_name": "All Warehouses",
                               "company": company, "is_group": 1})  # fmt: skip
        for label in COMPANY_WAREHOUSES:
            site.put("Warehouse", {
                "name": f"{label} - {abbr}", "warehouse_name": label, "company": company,
                "parent_warehouse": root, "is_group": 0,
                "warehouse_type": "Transit" if label == "Goods In Transit" else None,
            })  # fmt: skip
        for doctype in ("Sales Taxes and Charges Template", "Purchase Taxes and Charges Template"):
            title = f"{doc.get('country') or 'Standard'} Tax"
            site.put(doctype, {
                "name": f"{title} - {abbr}", "title": title, "company": company, "is_default": 1,
                "taxes": [{"account_head": doc["_tax_account"], "rate": 16}],
            })  # fmt: skip
        cash = site.get("Mode of Payment", "Cash")
        if cash is not None:
            cash.setdefault("accounts", []).append(
                {"company": company, "default_account": doc["default_cash_account"]}
            )
        if not default_company(site):
            site.single("Global Defaults")["default_company"] = company

    @staticmethod
    def _chart(site: SiteData, doc: Doc) -> None:
        company, abbr = doc["name"], doc["abbr"]
        names: dict[str, str] = {}
        for row in charts.accounts(doc["chart_of_accounts"]):
            name = charts.account_name(row, abbr)
            names[row.account_name] = name
            site.put("Account", {
                "name": name, "account_name": row.account_name, "company": company,
                "account_number": row.account_number or None, "is_group": row.is_group,
                "parent_account": names.get(row.parent or ""), "account_type": row.account_type,
                "root_type": row.root_type, "account_currency": doc["default_currency"],
            })  # fmt: skip
        doc.update({
            "default_cash_account": names["Cash"],
            "default_receivable_account": names["Debtors"],
            "default_payable_account": names["Creditors"],
            "write_off_account": names["Write Off"],
            "round_off_account": names["Round Off"],
            "default_income_account": names["Sales"],
            "default_expense_account": names["Cost of Goods Sold"],
            "stock_adjustment_account": names["Stock Adjustment"],
            "cost_center": f"Main - {abbr}",
            "round_off_cost_center": f"Main - {abbr}",
            "_tax_account": names["VAT"],
        })  # fmt: skip

    def on_trash(self, site: SiteData, doc: Doc) -> None:
        company = doc["name"]
        for doctype in self.cascades:
            for name in [
                d["name"] for d in site.table(doctype).values() if d.get("company") == company
            ]:
                site.remove(doctype, name)
        for mode in site.table("Mode of Payment").values():
            mode["accounts"] = [r for r in mode.get("accounts", []) if r["company"] != company]
        defaults = site.single("Global Defaults")
        if defaults.get("default_company") == company:
            defaults.pop("default_company")


class WarehouseController(Controller):
    doctype = "Warehouse"

    def before_insert(self, site: SiteData, doc: Doc) -> None:
        # Without a company ERPNext silently uses the site's default company.
        doc.setdefault("company", default_company(site))
        doc.setdefault("is_group", 0)
        name = doc.get("warehouse_name") or ""
        if doc.get("company") and site.exists("Company", doc["company"]):
            suffix = f" - {company_abbr(site, doc['company'])}"
            doc["name"] = name if name.endswith(suffix) else name + suffix


class CustomerController(Controller):
    doctype = "Customer"

    def before_insert(self, site: SiteData, doc: Doc) -> None:
        selling = site.single("Selling Settings")
        doc.setdefault("customer_type", "Company")
        for fieldname in ("customer_group", "territory"):
            if not doc.get(fieldname) and selling.get(fieldname):
                doc[fieldname] = selling[fieldname]
        wanted = doc.get("customer_name") or ""
        name, n = wanted, 0
        while site.exists(self.doctype, name):  # ERPNext renames instead of refusing
            n += 1
            name = f"{wanted} - {n}"
        doc["name"] = name
        if n:
            doc["_message"] = f"Changed customer name to '{name}' as '{wanted}' already exists."


class ItemController(Controller):
    doctype = "Item"
    cascades = ("Item Price",)

    def before_insert(self, site: SiteData, doc: Doc) -> None:
        doc.setdefault("item_name", doc.get("item_code"))
        doc.setdefault("stock_uom", site.single("Stock Settings").get("stock_uom"))
        doc.setdefault("is_stock_item", 1)
        doc.setdefault("is_sales_item", 1)

    def after_insert(self, site: SiteData, doc: Doc) -> None:
        rate = doc.get("standard_rate")
        if rate:
            price_list = site.get("Price List", "Standard Selling")
            site.put("Item Price", {
                "name": secrets.token_hex(5), "item_code": doc["name"],
                "price_list": "Standard Selling", "price_list_rate": float(rate), "selling": 1,
                "currency": price_list and price_list.get("currency"),
            })  # fmt: skip

    def on_trash(self, site: SiteData, doc: Doc) -> None:
        for price in [
            p["name"] for p in site.table("Item Price").values() if p["item_code"] == doc["name"]
        ]:
            site.remove("Item Price", price)


class ModeOfPaymentController(Controller):
    doctype = "Mode of Payment"

    def validate(self, site: SiteData, doc: Doc, old: Doc | None) -> None:
        seen: set[str] = set()
        for row in doc.get("accounts") or []:
            company, account = row.get("company"), row.get("default_account")
            if company in seen:
                raise ValidationError("Same Company is entered more than once")
            seen.add(company)
            if not site.exists("Company", company):
                raise missing_link("Company", company)
            found = site.get("Account", account) if account else None
            if found is None or found["company"] != company:
                raise ValidationError(
                    f"Account {account} does not match with Company {company} in Mode of "
                    f"Account: {doc['name']}"
                )


class PosProfileController(Controller):
    doctype = "POS Profile"

    def before_insert(self, site: SiteData, doc: Doc) -> None:
        name = doc.pop("__newname", None) or doc.get("name")
        if not name:
            raise ValidationError("Please set the document name")
        doc["name"] = name
        doc.setdefault("selling_price_list", "Standard Selling")
        company = site.get("Company", doc.get("company") or "")
        if company is not None:
            doc.setdefault("currency", company["default_currency"])

    def validate(self, site: SiteData, doc: Doc, old: Doc | None) -> None:
        if int(doc.get("disabled") or 0) and self._ongoing_session(site, doc["name"]):
            raise ValidationError(
                f"POS Profile {doc['name']} cannot be disabled as there are ongoing POS sessions."
            )
        company = doc["company"]
        warehouse = site.known("Warehouse", doc["warehouse"])
        if warehouse["company"] != company:
            raise ValidationError(f"{doc['warehouse']} does not belong to Company {company}")
        payments = doc.get("payments") or []
        if not payments:
            raise ValidationError(
                "Payment methods are mandatory. Please add at least one payment method."
            )
        defaults = sum(int(bool(p.get("default"))) for p in payments)
        if defaults == 0:
            raise ValidationError("Please select a default mode of payment")
        if defaults > 1:
            raise ValidationError("You can only select one mode of payment as default")
        for row in payments:
            mode = site.get("Mode of Payment", row.get("mode_of_payment") or "")
            if mode is None:
                raise missing_link("Mode of Payment", row.get("mode_of_payment"))
            if not any(a["company"] == company for a in mode.get("accounts") or []):
                raise ValidationError(
                    f"Please set default Cash or Bank account in Mode of Payments {mode['name']}"
                )

    @staticmethod
    def _ongoing_session(site: SiteData, profile: str) -> bool:
        return any(
            e.get("pos_profile") == profile
            and e.get("docstatus") == 1
            and e.get("status") == "Open"
            for e in site.table("POS Opening Entry").values()
        )


class PosOpeningEntryController(Controller):
    doctype = "POS Opening Entry"
    STATUS: ClassVar[dict[int, str]] = {0: "Draft", 1: "Open", 2: "Cancelled"}

    def before_insert(self, site: SiteData, doc: Doc) -> None:
        doc["name"] = f"new-pos-opening-entry-{secrets.token_hex(3)}"  # until it validates
        doc.setdefault("posting_date", date.today().isoformat())

    def validate(self, site: SiteData, doc: Doc, old: Doc | None) -> None:
        profile = site.known("POS Profile", doc["pos_profile"])
        if profile["company"] != doc["company"]:
            raise ValidationError(
                f"POS Profile {profile['name']} does not belong to company {doc['company']}"
            )
        if old is None:
            doc["name"] = site.next_in_series(f"POS-OPE-{date.today().year}-")
        doc["status"] = self.STATUS[int(doc.get("docstatus") or 0)]


CONTROLLERS: dict[str, Controller] = {
    c.doctype: c
    for c in (
        CompanyController(),
        WarehouseController(),
        CustomerController(),
        ItemController(),
        ModeOfPaymentController(),
        PosProfileController(),
        PosOpeningEntryController(),
    )
}
BASE = Controller()


def controller(doctype: str) -> Controller:
    return CONTROLLERS.get(doctype, BASE)
