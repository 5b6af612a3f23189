"""What a site holds before and after ERPNext's setup wizard.

A fresh site (`bench new-site`) has users, countries and currencies but no customer
groups, territories, price lists, modes of payment, fiscal year, warehouse types, UOMs or
item groups, so a Company cannot be made on it yet. The wizard installs those and makes
the site's first company; the default site of the simulator is one it has run on.
"""

from __future__ import annotations

from typing import Any

from provisioner.simulator.errors import ValidationError
from provisioner.simulator.store import SiteData

CURRENCIES = (
    "KES", "UGX", "TZS", "RWF", "ETB", "NGN", "GHS", "ZAR", "EGP", "MAD", "USD", "EUR", "GBP",
    "INR", "AED", "CAD", "AUD", "JPY", "CNY", "BRL", "MXN", "CHF", "SEK", "XOF", "XAF",
)  # fmt: skip
ENABLED_CURRENCIES = ("USD", "EUR", "INR")
COUNTRIES = (
    "Kenya", "Uganda", "Tanzania", "Rwanda", "Ethiopia", "Nigeria", "Ghana", "South Africa",
    "Egypt", "Morocco", "United States", "United Kingdom", "Germany", "France", "India",
    "United Arab Emirates", "Canada", "Australia", "Japan", "China", "Brazil", "Mexico",
    "Switzerland", "Sweden", "Senegal", "Cameroon", "Ivory Coast", "Spain", "Italy",
    "Netherlands", "Ireland", "Portugal", "Zambia", "Botswana", "Namibia", "Malawi",
)  # fmt: skip
CUSTOMER_GROUPS = ("Individual", "Commercial", "Non Profit", "Government")
ITEM_GROUPS = ("Products", "Raw Material", "Services", "Sub Assemblies", "Consumable")
UOMS = ("Nos", "Unit", "Box", "Kg", "Litre", "Hour", "Meter", "Pair", "Set")
MODES_OF_PAYMENT = {
    "Cash": "Cash",
    "Bank Draft": "Bank",
    "Cheque": "Bank",
    "Credit Card": "Bank",
    "Wire Transfer": "Bank",
}
WIZARD_FIELDS = ("company_name", "company_abbr", "currency", "country", "chart_of_accounts",
                 "fy_start_date", "fy_end_date")  # fmt: skip


def bootstrap(site: SiteData) -> None:
    """What `bench new-site … --install-app erpnext` leaves: a site before its wizard."""
    for code in CURRENCIES:
        site.put("Currency", {"name": code, "currency_name": code,
                              "enabled": int(code in ENABLED_CURRENCIES)})  # fmt: skip
    for country in COUNTRIES:
        site.put("Country", {"name": country, "country_name": country})
    for user in ("Administrator", "Guest"):
        site.put("User", {"name": user, "email": user, "first_name": user, "enabled": 1})
    site.single("System Settings").update(
        {"setup_complete": 0, "language": "en", "time_zone": "Asia/Kolkata"}
    )


def install(site: SiteData, args: dict[str, Any]) -> None:
    """The fixtures the setup wizard installs (the company is made by the caller)."""
    country, currency = args["country"], args["currency"]
    put_tree(site, "Customer Group", "customer_group_name", "All Customer Groups", CUSTOMER_GROUPS)
    put_tree(site, "Territory", "territory_name", "All Territories",
             (country, "Rest Of The World"))  # fmt: skip
    put_tree(site, "Item Group", "item_group_name", "All Item Groups", ITEM_GROUPS)
    site.put("Warehouse Type", {"name": "Transit"})
    for uom in UOMS:
        site.put("UOM", {"name": uom, "uom_name": uom, "enabled": 1})
    for name, selling in (("Standard Buying", 0), ("Standard Selling", 1)):
        site.put("Price List", {"name": name, "price_list_name": name, "currency": currency,
                                "selling": selling, "buying": 1 - selling,
                                "enabled": 1})  # fmt: skip
    for mode, kind in MODES_OF_PAYMENT.items():
        site.put("Mode of Payment", {"name": mode, "mode_of_payment": mode, "type": kind,
                                     "enabled": 1, "accounts": []})  # fmt: skip
    year = args["fy_start_date"][:4]
    site.put("Fiscal Year", {"name": year, "year": year, "year_start_date": args["fy_start_date"],
                             "year_end_date": args["fy_end_date"]})  # fmt: skip
    site.known("Currency", currency)["enabled"] = 1
    site.single("System Settings").update(
        {"country": country, "time_zone": args.get("timezone") or "Africa/Nairobi"}
    )
    site.single("Global Defaults").update(
        {"default_currency": currency, "current_fiscal_year": year, "country": country}
    )
    site.single("Selling Settings").update({
        "cust_master_name": "Customer Name", "territory": "Rest Of The World",
        "selling_price_list": "Standard Selling", "so_required": "No", "dn_required": "No",
    })  # fmt: skip
    site.single("Stock Settings").update(
        {"item_naming_by": "Item Code", "valuation_method": "FIFO", "stock_uom": "Nos"}
    )


def put_tree(site: SiteData, doctype: str, field: str, root: str, leaves: tuple[str, ...]) -> None:
    parent = "parent_" + doctype.lower().replace(" ", "_")
    site.put(doctype, {"name": root, field: root, "is_group": 1, parent: None})
    for leaf in leaves:
        site.put(doctype, {"name": leaf, field: leaf, "is_group": 0, parent: root})


def wizard_args(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise ValidationError("Setup wizard arguments must be a dict")
    missing = [f for f in WIZARD_FIELDS if not args.get(f)]
    if missing:
        raise ValidationError(f"Please enter {', '.join(missing)}", title="Setup failed")
    return args


def default_wizard_args(company: str, abbr: str) -> dict[str, Any]:
    return {
        "language": "English", "country": "Kenya", "timezone": "Africa/Nairobi",
        "currency": "KES", "company_name": company, "company_abbr": abbr,
        "chart_of_accounts": "Standard", "fy_start_date": "2026-01-01",
        "fy_end_date": "2026-12-31",
    }  # fmt: skip
