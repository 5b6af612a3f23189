"""The doctypes the simulator knows: their fields, links, selects and child tables.

Only what the provisioning steps and the contract touch is modelled; an unknown doctype
answers as real ERPNext does (500 ImportError). Behaviour beyond these declarations lives
in `controllers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocType:
    name: str
    autoname: str | None = None  # the field the document's name comes from
    mandatory: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)  # fieldname -> linked doctype
    selects: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)  # fieldname -> child doctype
    checks: tuple[str, ...] = ()  # 0/1 fields
    single: bool = False
    submittable: bool = False
    fields: tuple[str, ...] = ()  # other known fields (singles ignore unknown ones)
    # fieldname -> (doctype of a child table, its link field): rows that point at documents
    child_links: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def known_fields(self) -> set[str]:
        return {
            *self.mandatory, *self.links, *self.selects, *self.tables, *self.checks,
            *self.fields, *([self.autoname] if self.autoname else []),
        }  # fmt: skip


def label(fieldname: str) -> str:
    """ "default_currency" -> "Default Currency", as ERPNext names fields in messages."""
    special = {"uom": "UOM", "pos": "POS", "abbr": "Abbr", "of": "of", "and": "and"}
    return " ".join(special.get(w, w.capitalize()) for w in fieldname.split("_"))


YES_NO = ("No", "Yes")
_ALL = [
    DocType("Company", "company_name", mandatory=("company_name", "abbr", "default_currency"),
            links={"default_currency": "Currency", "country": "Country"},
            fields=("chart_of_accounts", "default_cash_account", "default_receivable_account",
                    "default_payable_account", "write_off_account", "round_off_account",
                    "round_off_cost_center", "cost_center", "default_income_account",
                    "default_expense_account", "stock_adjustment_account", "domain",
                    "create_chart_of_accounts_based_on", "parent_company", "is_group")),
    DocType("Account", "account_name", mandatory=("account_name", "company"),
            links={"company": "Company", "parent_account": "Account"},
            checks=("is_group",),
            fields=("account_number", "account_type", "root_type", "account_currency")),
    DocType("Cost Center", "cost_center_name", mandatory=("cost_center_name", "company"),
            links={"company": "Company", "parent_cost_center": "Cost Center"},
            checks=("is_group",)),
    DocType("Warehouse", "warehouse_name", mandatory=("warehouse_name", "company"),
            links={"company": "Company", "parent_warehouse": "Warehouse",
                   "warehouse_type": "Warehouse Type"},
            checks=("is_group", "disabled")),
    DocType("Warehouse Type", "name"),
    DocType("Customer", "customer_name", mandatory=("customer_name",),
            links={"customer_group": "Customer Group", "territory": "Territory",
                   "default_price_list": "Price List"},
            selects={"customer_type": ("Company", "Individual", "Partnership")},
            checks=("disabled",), fields=("mobile_no", "email_id", "tax_id")),
    DocType("Customer Group", "customer_group_name",
            links={"parent_customer_group": "Customer Group"}, checks=("is_group",)),
    DocType("Territory", "territory_name", links={"parent_territory": "Territory"},
            checks=("is_group",)),
    DocType("Price List", "price_list_name", links={"currency": "Currency"},
            checks=("buying", "selling", "enabled")),
    DocType("Item", "item_code", mandatory=("item_code", "item_group", "stock_uom"),
            links={"item_group": "Item Group", "stock_uom": "UOM"},
            checks=("is_stock_item", "disabled", "is_sales_item"),
            fields=("item_name", "standard_rate", "description")),
    DocType("Item Price", None, mandatory=("item_code", "price_list"),
            links={"item_code": "Item", "price_list": "Price List", "currency": "Currency"},
            checks=("selling", "buying"), fields=("price_list_rate",)),
    DocType("Item Group", "item_group_name", links={"parent_item_group": "Item Group"},
            checks=("is_group",)),
    DocType("UOM", "uom_name", checks=("enabled", "must_be_whole_number")),
    DocType("Currency", "currency_name", checks=("enabled",), fields=("symbol",)),
    DocType("Country", "country_name", fields=("code",)),
    DocType("Fiscal Year", "year", fields=("year_start_date", "year_end_date")),
    DocType("User", "email", fields=("first_name", "enabled")),
    DocType("Mode of Payment", "mode_of_payment", mandatory=("mode_of_payment",),
            selects={"type": ("Cash", "Bank", "General", "Phone")},
            tables={"accounts": "Mode of Payment Account"}, checks=("enabled",),
            child_links={"accounts": ("Account", "default_account")}),
    DocType("Sales Taxes and Charges Template", "title", links={"company": "Company"},
            fields=("taxes",), checks=("is_default",)),
    DocType("Purchase Taxes and Charges Template", "title", links={"company": "Company"},
            fields=("taxes",), checks=("is_default",)),
    DocType("POS Profile", None,
            mandatory=("company", "warehouse", "write_off_account", "write_off_cost_center"),
            links={"company": "Company", "warehouse": "Warehouse", "customer": "Customer",
                   "write_off_account": "Account", "write_off_cost_center": "Cost Center",
                   "cost_center": "Cost Center", "selling_price_list": "Price List",
                   "currency": "Currency"},
            tables={"payments": "POS Payment Method"}, checks=("disabled",),
            child_links={"payments": ("Mode of Payment", "mode_of_payment")}),
    DocType("POS Opening Entry", None,
            mandatory=("period_start_date", "company", "pos_profile", "user",
                       "balance_details"),
            links={"company": "Company", "pos_profile": "POS Profile", "user": "User"},
            tables={"balance_details": "POS Opening Entry Detail"}, submittable=True,
            fields=("posting_date", "status", "period_end_date")),
    DocType("Selling Settings", single=True,
            links={"customer_group": "Customer Group", "territory": "Territory",
                   "selling_price_list": "Price List"},
            selects={"cust_master_name": ("Customer Name", "Naming Series", "Auto Name"),
                     "so_required": YES_NO, "dn_required": YES_NO},
            checks=("allow_multiple_items", "validate_selling_price",
                    "maintain_same_sales_rate", "editable_price_list_rate",
                    "allow_negative_rates_for_items")),
    DocType("Stock Settings", single=True,
            links={"stock_uom": "UOM", "default_warehouse": "Warehouse",
                   "item_group": "Item Group"},
            selects={"item_naming_by": ("Item Code", "Naming Series"),
                     "valuation_method": ("FIFO", "Moving Average", "LIFO")},
            checks=("allow_negative_stock", "show_barcode_field",
                    "auto_insert_price_list_rate_if_missing", "clean_description_html")),
    DocType("System Settings", single=True, links={"country": "Country"},
            checks=("setup_complete", "enable_telemetry"),
            fields=("language", "time_zone", "currency_precision", "float_precision")),
    DocType("Global Defaults", single=True,
            links={"default_company": "Company", "default_currency": "Currency",
                   "current_fiscal_year": "Fiscal Year", "country": "Country"}),
]  # fmt: skip
DOCTYPES: dict[str, DocType] = {d.name: d for d in _ALL}
# Rows of these live inside their parent; listing one directly is refused (403).
CHILD_DOCTYPES = {
    "Mode of Payment Account",
    "POS Payment Method",
    "POS Opening Entry Detail",
    "Item Default",
    "Sales Taxes and Charges",
}
