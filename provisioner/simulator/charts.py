"""The chart-of-accounts templates ERPNext v15 offers every country.

"Standard" makes 82 Account rows and "Standard with Numbers" 81, as measured on a real
site (names like "Cash - ABC" and "1110 - Cash - ABC"). v15 ships no chart of its own for
Kenya or Uganda; a few countries that do have one are listed so that the platform's
"use the country's chart when there is one" path is exercised too.
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD = "Standard"
WITH_NUMBERS = "Standard with Numbers"
COUNTRY_CHARTS = {
    "India": ["India - Chart of Accounts"],
    "Germany": ["SKR03 mit Kontonummern", "SKR04 mit Kontonummern"],
    "France": ["Plan Comptable Général"],
}

# (name, account_type, children); a node with children is a group account.
Node = tuple[str, str, tuple["Node", ...]]


def _leaves(*names: str, account_type: str = "") -> tuple[Node, ...]:
    return tuple((name, account_type, ()) for name in names)


TREE: tuple[tuple[str, Node], ...] = (
    ("Asset", ("Application of Funds (Assets)", "", (
        ("Current Assets", "", (
            ("Accounts Receivable", "", (("Debtors", "Receivable", ()),)),
            ("Bank Accounts", "Bank", ()),
            ("Cash In Hand", "Cash", (("Cash", "Cash", ()),)),
            ("Loans and Advances (Assets)", "", _leaves("Employee Advances")),
            ("Securities and Deposits", "", _leaves("Earnest Money")),
            ("Stock Assets", "Stock", (("Stock In Hand", "Stock", ()),)),
            ("Tax Assets", "", ()),
        )),
        ("Fixed Assets", "", (
            *_leaves("Capital Equipment", "Electronic Equipment", "Furniture and Fixtures",
                     "Office Equipment", "Plants and Machineries", "Buildings", "Softwares",
                     account_type="Fixed Asset"),
            ("Accumulated Depreciation", "Accumulated Depreciation", ()),
            ("CWIP Account", "Capital Work in Progress", ()),
        )),
        ("Investments", "", ()),
        ("Temporary Accounts", "", (("Temporary Opening", "Temporary", ()),)),
    ))),
    ("Liability", ("Source of Funds (Liabilities)", "", (
        ("Current Liabilities", "", (
            ("Accounts Payable", "", (
                ("Creditors", "Payable", ()),
                ("Payroll Payable", "", ()),
            )),
            ("Stock Liabilities", "", (
                ("Stock Received But Not Billed", "Stock Received But Not Billed", ()),
                ("Asset Received But Not Billed", "Asset Received But Not Billed", ()),
            )),
            ("Duties and Taxes", "Tax", _leaves("VAT", account_type="Tax")),
            ("Loans (Liabilities)", "", (
                *_leaves("Secured Loans", "Unsecured Loans"),
                ("Bank Overdraft Account", "Bank", ()),
            )),
        )),
    ))),
    ("Equity", ("Equity", "", (
        *_leaves("Capital Stock", "Dividends Paid", "Opening Balance Equity",
                 "Retained Earnings", "Revaluation Surplus", account_type="Equity"),
    ))),
    ("Income", ("Income", "", (
        ("Direct Income", "", _leaves("Sales", "Service", account_type="Income Account")),
        ("Indirect Income", "", ()),
    ))),
    ("Expense", ("Expenses", "", (
        ("Direct Expenses", "", (
            ("Stock Expenses", "", (
                ("Cost of Goods Sold", "Cost of Goods Sold", ()),
                ("Expenses Included In Asset Valuation", "Expenses Included In Asset Valuation",
                 ()),
                ("Expenses Included In Valuation", "Expenses Included In Valuation", ()),
                ("Stock Adjustment", "Stock Adjustment", ()),
            )),
        )),
        ("Indirect Expenses", "", (
            *_leaves("Administrative Expenses", "Commission on Sales", "Entertainment Expenses",
                     "Freight and Forwarding Charges", "Legal Expenses", "Marketing Expenses",
                     "Miscellaneous Expenses", "Office Maintenance Expenses", "Office Rent",
                     "Postal Expenses", "Print and Stationery", "Salary", "Sales Expenses",
                     "Telephone Expenses", "Travel Expenses", "Utility Expenses",
                     "Write Off", "Exchange Gain/Loss", "Gain/Loss on Asset Disposal",
                     "Deferred Expense"),
            ("Depreciation", "Depreciation", ()),
            ("Round Off", "Round Off", ()),
        )),
    ))),
)  # fmt: skip
# "Standard with Numbers": ERPNext's own account numbers (the Current Assets and Current
# Liabilities groups carry a range). VAT stands where the template's tax ledger is.
NUMBERS = {
    "Application of Funds (Assets)": "1000", "Current Assets": "1100-1600",
    "Accounts Receivable": "1300", "Debtors": "1310", "Bank Accounts": "1200",
    "Cash In Hand": "1100", "Cash": "1110", "Loans and Advances (Assets)": "1600",
    "Employee Advances": "1610", "Securities and Deposits": "1650", "Earnest Money": "1651",
    "Stock Assets": "1400", "Stock In Hand": "1410", "Tax Assets": "1500",
    "Fixed Assets": "1700", "Capital Equipment": "1710", "Electronic Equipment": "1720",
    "Furniture and Fixtures": "1730", "Office Equipment": "1740",
    "Plants and Machineries": "1750", "Buildings": "1760", "Softwares": "1770",
    "Accumulated Depreciation": "1780", "CWIP Account": "1790", "Investments": "1800",
    "Temporary Accounts": "1900", "Temporary Opening": "1910",
    "Source of Funds (Liabilities)": "2000", "Current Liabilities": "2100-2400",
    "Accounts Payable": "2100", "Creditors": "2110", "Payroll Payable": "2120",
    "Stock Liabilities": "2200", "Stock Received But Not Billed": "2210",
    "Asset Received But Not Billed": "2211", "Duties and Taxes": "2300", "VAT": "2310",
    "Loans (Liabilities)": "2400", "Secured Loans": "2410", "Unsecured Loans": "2420",
    "Bank Overdraft Account": "2430",
    "Equity": "3000", "Capital Stock": "3100", "Dividends Paid": "3200",
    "Opening Balance Equity": "3300", "Retained Earnings": "3400",
    "Revaluation Surplus": "3500",
    "Income": "4000", "Direct Income": "4100", "Sales": "4110", "Service": "4120",
    "Indirect Income": "4200",
    "Expenses": "5000", "Direct Expenses": "5100", "Stock Expenses": "5110",
    "Cost of Goods Sold": "5111", "Expenses Included In Asset Valuation": "5112",
    "Expenses Included In Valuation": "5118", "Stock Adjustment": "5119",
    "Indirect Expenses": "5200", "Administrative Expenses": "5201",
    "Commission on Sales": "5202", "Depreciation": "5203", "Entertainment Expenses": "5204",
    "Freight and Forwarding Charges": "5205", "Legal Expenses": "5206",
    "Marketing Expenses": "5207", "Office Maintenance Expenses": "5208", "Office Rent": "5209",
    "Postal Expenses": "5210", "Print and Stationery": "5211", "Round Off": "5212",
    "Salary": "5213", "Sales Expenses": "5214", "Telephone Expenses": "5215",
    "Travel Expenses": "5216", "Utility Expenses": "5217", "Write Off": "5218",
    "Exchange Gain/Loss": "5219", "Gain/Loss on Asset Disposal": "5222",
    "Miscellaneous Expenses": "5223",
}  # fmt: skip
# Group accounts that the template leaves empty (the company fills them in later).
EMPTY_GROUPS = {"Bank Accounts", "Tax Assets", "Investments", "Indirect Income"}
# The numbered template has no separate deferred-expense ledger: 81 rows instead of 82.
NOT_NUMBERED = {"Deferred Expense"}


@dataclass(frozen=True)
class AccountRow:
    account_name: str
    account_number: str
    parent: str | None  # the parent's account_name
    is_group: int
    account_type: str
    root_type: str


def charts_for_country(country: str) -> list[str]:
    return [*COUNTRY_CHARTS.get(country, []), STANDARD, WITH_NUMBERS]


def accounts(chart: str) -> list[AccountRow]:
    """The rows a chart makes, parents before children."""
    numbered = chart == WITH_NUMBERS
    rows: list[AccountRow] = []

    def walk(node: Node, parent: str | None, root_type: str) -> None:
        name, account_type, children = node
        if numbered and name in NOT_NUMBERED:
            return
        is_group = int(bool(children) or name in EMPTY_GROUPS)
        number = NUMBERS[name] if numbered else ""
        rows.append(AccountRow(name, number, parent, is_group, account_type, root_type))
        for child in children:
            walk(child, name, root_type)

    for root_type, node in TREE:
        walk(node, None, root_type)
    return rows


def account_name(row: AccountRow, abbr: str) -> str:
    prefix = f"{row.account_number} - " if row.account_number else ""
    return f"{prefix}{row.account_name} - {abbr}"
