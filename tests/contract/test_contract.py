"""The contract page (`erpnext-contract.md`), case by case, against the simulator over HTTP.

Each case is one request with what ERPNext answered to it on a real site: the status, the
`exc_type`, the message in `_server_messages`, and the documents it made or left alone.
`given` steps prepare the site first (through the same API); `then` checks side effects.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
import requests

from tests.conftest import SIM_KEY, SIM_SECRET

AUTH: dict[str, dict[str, str]] = {
    "token": {"Authorization": f"token {SIM_KEY}:{SIM_SECRET}"},
    "basic": {
        "Authorization": "Basic " + base64.b64encode(f"{SIM_KEY}:{SIM_SECRET}".encode()).decode()
    },
    "bad": {"Authorization": f"token {SIM_KEY}:wrong-secret"},
    "garbled": {"Authorization": "token garbage"},
    "none": {},
}
WIZARD = "/api/method/frappe.desk.page.setup_wizard.setup_wizard.setup_complete"
COUNT = "/api/method/frappe.client.get_count"
SINGLE_VALUE = "/api/method/frappe.client.get_single_value"
CHARTS = (
    "/api/method/erpnext.accounts.doctype.account.chart_of_accounts.chart_of_accounts"
    ".get_charts_for_country"
)
CHECK_OPENING = "/api/method/erpnext.selling.page.point_of_sale.point_of_sale.check_opening_entry"
DELETION = "/api/method/erpnext.setup.doctype.company.company.create_transaction_deletion_request"
DEFAULT = "Engine Default Ltd"  # the default site's company (abbr EDL), made by its wizard
ACME = "Acme Kenya Ltd"
FIRST_ENTRY = f"POS-OPE-{date.today().year}-00001"


class Api:
    """Plain HTTP against the simulator, as any Frappe client would talk to it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: str | None = None,
        params: dict[str, Any] | None = None,
        auth: str = "token",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        return self.http.request(
            method,
            self.url + path,
            json=body if raw is None else None,
            data=raw,
            params=params,
            headers={**AUTH[auth], **(headers or {})},
            timeout=10,
        )

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """The `data` or `message` of an answer that must succeed."""
        answer = self.send(method, path, body=body, params=params or None)
        assert answer.status_code in (200, 202), answer.text
        payload = answer.json()
        return payload["data"] if "data" in payload else payload["message"]

    def doc(self, doctype: str, name: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/resource/{doctype}/{name}")

    def missing(self, doctype: str, name: str) -> bool:
        return self.send("GET", f"/api/resource/{doctype}/{name}").status_code == 404

    def count(self, doctype: str, filters: list[list[Any]] | None = None) -> int:
        return self.ok("GET", COUNT, doctype=doctype, filters=json.dumps(filters or []))

    def names(self, doctype: str, filters: list[list[Any]] | None = None) -> set[str]:
        rows = self.ok(
            "GET", f"/api/resource/{doctype}", filters=json.dumps(filters or []),
            limit_page_length=0,
        )  # fmt: skip
        return {row["name"] for row in rows}

    def single_value(self, doctype: str, fieldname: str) -> Any:
        return self.ok("GET", SINGLE_VALUE, doctype=doctype, field=fieldname)


Given = Callable[[Api], None]
Then = Callable[[Api, requests.Response], None]


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    exc_type: str | None = None  # None: not checked (a 2xx never carries one)
    message: str | None = None  # the first of `_server_messages`; a trailing "…" = prefix
    body: Any = None
    raw: str | None = None
    params: dict[str, Any] | None = None
    auth: str = "token"
    headers: dict[str, str] = field(default_factory=dict)
    fresh: bool = False  # a site before its setup wizard
    given: tuple[Given, ...] = ()
    then: Then | None = None


def server_messages(answer: requests.Response) -> list[dict[str, Any]]:
    """`_server_messages` is a JSON string holding a list of JSON strings."""
    raw = answer.json().get("_server_messages")
    return [json.loads(item) for item in json.loads(raw)] if raw else []


# -- documents and steps that prepare a case ---------------------------------------------


def company_body(name: str = ACME, abbr: str | None = "AKL", **extra: Any) -> dict[str, Any]:
    body = {"company_name": name, "default_currency": "KES", "country": "Kenya",
            "chart_of_accounts": "Standard", **extra}  # fmt: skip
    if abbr:
        body["abbr"] = abbr
    return body


def profile_body(name: str | None = "Acme POS", **extra: Any) -> dict[str, Any]:
    body = {
        "company": ACME, "warehouse": "Stores - AKL", "write_off_account": "Write Off - AKL",
        "write_off_cost_center": "Main - AKL",
        "payments": [{"mode_of_payment": "Cash", "default": 1}], **extra,
    }  # fmt: skip
    if name:
        body["name"] = name
    return body


def entry_body(**extra: Any) -> dict[str, Any]:
    return {
        "pos_profile": "Acme POS", "user": "Administrator", "company": ACME,
        "period_start_date": date.today().isoformat(),
        "balance_details": [{"mode_of_payment": "Cash", "opening_amount": 0}], **extra,
    }  # fmt: skip


def post(doctype: str, body: dict[str, Any]) -> Given:
    def step(api: Api) -> None:
        api.ok("POST", f"/api/resource/{doctype}", body)

    return step


def put(doctype: str, name: str, body: dict[str, Any]) -> Given:
    def step(api: Api) -> None:
        api.ok("PUT", f"/api/resource/{doctype}/{name}", body)

    return step


ACME_CO = post("Company", company_body())
ACME_POS = post("POS Profile", profile_body())
OPEN_ENTRY = post("POS Opening Entry", entry_body(docstatus=1))
CARD_ACCOUNT = put("Mode of Payment", "Credit Card",
                   {"accounts": [{"company": ACME, "default_account": "Cash - AKL"}]})  # fmt: skip
WALK_IN = post("Customer", {"customer_name": "Walk-In Customer"})
WIZARD_ARGS = {
    "language": "English", "country": "Kenya", "timezone": "Africa/Nairobi", "currency": "KES",
    "company_name": ACME, "company_abbr": "AKL", "chart_of_accounts": "Standard",
    "fy_start_date": "2026-01-01", "fy_end_date": "2026-12-31", "setup_demo": 0,
    "enable_telemetry": 0,
}  # fmt: skip


# -- checks of side effects ---------------------------------------------------------------


def data(answer: requests.Response) -> Any:
    return answer.json()["data"]


def body_is(expected: Any) -> Then:
    def check(api: Api, answer: requests.Response) -> None:
        assert answer.json() == expected

    return check


def no_auth_details(api: Api, answer: requests.Response) -> None:
    body = answer.json()
    assert "_server_messages" not in body
    assert body["exception"].startswith("frappe.exceptions.AuthenticationError")
    assert "exc" in body


def error_message_too(api: Api, answer: requests.Response) -> None:
    assert answer.json()["_error_message"] == "No permission for Company"


def html_not_found(api: Api, answer: requests.Response) -> None:
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "nosuch.example.com does not exist" in answer.text


def deleted(doctype: str, name: str) -> Then:
    def check(api: Api, answer: requests.Response) -> None:
        assert answer.json() == {"data": "ok"}
        assert api.missing(doctype, name)

    return check


def first_page_of_20(api: Api, answer: requests.Response) -> None:
    assert len(data(answer)) == 20
    assert api.count("Account") == 82


def all_rows(api: Api, answer: requests.Response) -> None:
    assert len(data(answer)) == api.count("Account") == 82


def second_page(api: Api, answer: requests.Response) -> None:
    everything = api.ok("GET", "/api/resource/Account", order_by="name asc", limit_page_length=0)
    assert data(answer) == everything[20:40]


def cash_ledgers_only(api: Api, answer: requests.Response) -> None:
    assert data(answer) == [
        {"name": "Cash - EDL", "account_type": "Cash"},
        {"name": "Cash In Hand - EDL", "account_type": "Cash"},
    ]


def message_is(expected: Any) -> Then:
    def check(api: Api, answer: requests.Response) -> None:
        assert answer.json() == {"message": expected}

    return check


def count_matches_list(api: Api, answer: requests.Response) -> None:
    leaves = [["company", "=", DEFAULT], ["is_group", "=", 0]]
    assert answer.json()["message"] == len(api.names("Account", leaves)) < 82


def single_without_empty_fields(api: Api, answer: requests.Response) -> None:
    settings = data(answer)
    assert settings["name"] == "Selling Settings"
    assert settings["selling_price_list"] == "Standard Selling"
    assert all(value not in (None, "") for value in settings.values())


def duplicate_title(api: Api, answer: requests.Response) -> None:
    assert server_messages(answer)[0]["title"] == "Duplicate Name"


def no_company_left(name: str) -> Then:
    """The refused request was rolled back: no company, no accounts, no warehouses."""

    def check(api: Api, answer: requests.Response) -> None:
        assert api.missing("Company", name)
        for doctype in ("Account", "Warehouse", "Cost Center"):
            assert api.count(doctype, [["company", "=", name]]) == 0

    return check


def still_fresh(api: Api, answer: requests.Response) -> None:
    assert api.single_value("System Settings", "setup_complete") == 0
    assert api.count("Customer Group") == api.count("Mode of Payment") == 0
    assert api.missing("Company", ACME)
    assert api.ok("POST", WIZARD, {"args": WIZARD_ARGS}) == {"status": "ok"}


def wizard_fixtures(api: Api, answer: requests.Response) -> None:
    assert answer.json() == {"message": {"status": "ok"}}
    assert api.single_value("System Settings", "setup_complete") == 1
    assert api.single_value("Global Defaults", "default_company") == ACME
    assert api.names("Customer Group") >= {"All Customer Groups", "Individual", "Commercial",
                                           "Non Profit", "Government"}  # fmt: skip
    assert api.names("Territory") >= {"All Territories", "Kenya", "Rest Of The World"}
    assert api.names("Price List") >= {"Standard Buying", "Standard Selling"}
    assert api.names("Mode of Payment") == {"Cash", "Bank Draft", "Cheque", "Credit Card",
                                            "Wire Transfer"}  # fmt: skip
    assert api.count("Fiscal Year") == 1
    assert "Products" in api.names("Item Group")
    assert "Nos" in api.names("UOM")
    assert api.doc("Currency", "KES")["enabled"] == 1
    assert api.count("Account", [["company", "=", ACME]]) == 82
    api.ok("POST", "/api/resource/Company", company_body("Second Co", "SCO"))


def standard_company(api: Api, answer: requests.Response) -> None:
    check_answer(answer, {
        "name": ACME, "abbr": "AKL", "default_cash_account": "Cash - AKL",
        "default_receivable_account": "Debtors - AKL", "write_off_account": "Write Off - AKL",
        "cost_center": "Main - AKL", "round_off_account": "Round Off - AKL",
    })  # fmt: skip
    of_acme = [["company", "=", ACME]]
    assert api.count("Account", of_acme) == 82
    assert api.names("Warehouse", of_acme) == {
        "All Warehouses - AKL", "Finished Goods - AKL", "Goods In Transit - AKL",
        "Stores - AKL", "Work In Progress - AKL",
    }  # fmt: skip
    assert api.doc("Warehouse", "Stores - AKL")["parent_warehouse"] == "All Warehouses - AKL"
    assert api.names("Cost Center", of_acme) == {f"{ACME} - AKL", "Main - AKL"}
    cash_rows = api.doc("Mode of Payment", "Cash")["accounts"]
    assert {"company": ACME, "default_account": "Cash - AKL"} in [
        {"company": r["company"], "default_account": r["default_account"]} for r in cash_rows
    ]
    for doctype in ("Sales Taxes and Charges Template", "Purchase Taxes and Charges Template"):
        (template,) = api.names(doctype, of_acme)
        assert [tax["rate"] for tax in api.doc(doctype, template)["taxes"]] == [16]


def numbered_company(api: Api, answer: requests.Response) -> None:
    assert data(answer)["default_cash_account"] == "1110 - Cash - NUM"
    assert api.count("Account", [["company", "=", "Numbered Ltd"]]) == 81
    assert not api.missing("Account", "1110 - Cash - NUM")


def generated_abbr(api: Api, answer: requests.Response) -> None:
    abbr = data(answer)["abbr"]
    assert abbr
    assert not api.missing("Warehouse", f"Stores - {abbr}")


def currency_disabled(code: str) -> Given:
    def step(api: Api) -> None:
        assert api.doc("Currency", code)["enabled"] == 0

    return step


def currency_enabled(api: Api, answer: requests.Response) -> None:
    assert api.doc("Currency", "UGX")["enabled"] == 1


def company_gone(api: Api, answer: requests.Response) -> None:
    assert answer.json() == {"data": "ok"}
    assert api.missing("Company", ACME)
    assert api.count("Account", [["company", "=", ACME]]) == 0
    assert ACME not in {r["company"] for r in api.doc("Mode of Payment", "Cash")["accounts"]}


def company_kept(api: Api, answer: requests.Response) -> None:
    assert api.doc("Company", ACME)["abbr"] == "AKL"


def then_profile_and_company_delete(api: Api, answer: requests.Response) -> None:
    assert api.count("POS Opening Entry", [["company", "=", ACME]]) == 0
    assert api.send("DELETE", "/api/resource/POS Profile/Acme POS").status_code == 202
    assert api.send("DELETE", f"/api/resource/Company/{ACME}").status_code == 202


def without_parent(api: Api, answer: requests.Response) -> None:
    assert data(answer)["name"] == "Loose Store - EDL"
    assert not data(answer).get("parent_warehouse")


def renamed(api: Api, answer: requests.Response) -> None:
    assert data(answer)["name"] == "Walk-In Customer - 1"
    assert data(answer)["customer_name"] == "Walk-In Customer"
    assert api.count("Customer") == 2


def item_price(api: Api, answer: requests.Response) -> None:
    rows = api.ok("GET", "/api/resource/Item Price", fields='["price_list", "price_list_rate"]',
                  filters='[["item_code", "=", "Soda 500ml"]]')  # fmt: skip
    assert rows == [{"price_list": "Standard Selling", "price_list_rate": 80}]


def merged_settings(api: Api, answer: requests.Response) -> None:
    for settings in (data(answer), api.doc("Selling Settings", "Selling Settings")):
        assert settings["so_required"] == "Yes"
        assert settings["selling_price_list"] == "Standard Selling"  # kept
        assert "no_such_field" not in settings


def selling_unchanged(api: Api, answer: requests.Response) -> None:
    settings = api.doc("Selling Settings", "Selling Settings")
    assert "customer_group" not in settings
    assert settings["so_required"] == "No"


def stock_merged(api: Api, answer: requests.Response) -> None:
    check_answer(answer, {"allow_negative_stock": 1, "valuation_method": "FIFO",
                          "stock_uom": "Nos"})  # fmt: skip


def payments_replaced(api: Api, answer: requests.Response) -> None:
    rows = api.doc("POS Profile", "Acme POS")["payments"]
    assert [r["mode_of_payment"] for r in rows] == ["Credit Card"]


def draft_entry(api: Api, answer: requests.Response) -> None:
    entry = data(answer)
    assert re.fullmatch(rf"POS-OPE-{date.today().year}-\d{{5}}", entry["name"])
    assert (entry["status"], entry["docstatus"]) == ("Draft", 0)


def two_open_entries(api: Api, answer: requests.Response) -> None:
    open_ones = [["pos_profile", "=", "Acme POS"], ["status", "=", "Open"], ["docstatus", "=", 1]]
    assert api.names("POS Opening Entry", open_ones) == {
        FIRST_ENTRY, FIRST_ENTRY.replace("00001", "00002"),
    }  # fmt: skip


def open_entries_of_user(api: Api, answer: requests.Response) -> None:
    rows = answer.json()["message"]
    assert {r["name"] for r in rows} == {FIRST_ENTRY, FIRST_ENTRY.replace("00001", "00002")}
    assert {r["pos_profile"] for r in rows} == {"Acme POS"}


def toggled(doctype: str, name: str) -> Then:
    """The PUT disabled it; a PUT of 0 puts it back."""

    def check(api: Api, answer: requests.Response) -> None:
        assert data(answer)["disabled"] == api.doc(doctype, name)["disabled"] == 1
        back = api.ok("PUT", f"/api/resource/{doctype}/{name}", {"disabled": 0})
        assert back["disabled"] == api.doc(doctype, name)["disabled"] == 0

    return check


def profile_still_enabled(api: Api, answer: requests.Response) -> None:
    assert api.doc("POS Profile", "Acme POS")["disabled"] == 0


def profile_kept(api: Api, answer: requests.Response) -> None:
    assert not api.missing("POS Profile", "Acme POS")


def stock_unchanged(api: Api, answer: requests.Response) -> None:
    assert api.doc("Stock Settings", "Stock Settings")["valuation_method"] == "FIFO"


def item_and_price_gone(api: Api, answer: requests.Response) -> None:
    assert answer.json() == {"data": "ok"}
    assert api.missing("Item", "Soda")
    assert api.count("Item Price", [["item_code", "=", "Soda"]]) == 0


def answer_is(**expected: Any) -> Then:
    """The answer's `data` holds these values."""
    return lambda _api, answer: check_answer(answer, expected)


def check_answer(answer: requests.Response, expected: dict[str, Any]) -> None:
    got = data(answer)
    assert {k: got.get(k) for k in expected} == expected


# -- the cases -----------------------------------------------------------------------------

CASES = [
    # Sites, auth, envelopes
    Case("ping needs no auth", "GET", "/api/method/ping", 200, auth="none",
         then=message_is("pong")),
    Case("logged user", "GET", "/api/method/frappe.auth.get_logged_user", 200,
         then=message_is("Administrator")),
    Case("basic auth works too", "GET", "/api/method/frappe.auth.get_logged_user", 200,
         auth="basic", then=message_is("Administrator")),
    Case("wrong secret is 401 without messages", "GET", "/api/resource/Company", 401,
         "AuthenticationError", auth="bad", then=no_auth_details),
    Case("garbled key is 401", "GET", "/api/resource/Company", 401, "AuthenticationError",
         auth="garbled", then=no_auth_details),
    Case("no auth is 403 with messages", "GET", "/api/resource/Company", 403, "PermissionError",
         "No permission for Company", auth="none", then=error_message_too),
    Case("unknown host is a 404 HTML page", "GET", "/api/resource/Company", 404,
         headers={"Host": "nosuch.example.com"}, then=html_not_found),
    Case("site chosen by X-Frappe-Site-Name", "GET", "/api/method/frappe.auth.get_logged_user",
         200, headers={"Host": "proxy.internal", "X-Frappe-Site-Name": "erp.localhost"},
         then=message_is("Administrator")),
    Case("a document in a data envelope", "GET", f"/api/resource/Company/{DEFAULT}", 200,
         then=answer_is(name=DEFAULT, abbr="EDL", default_currency="KES")),
    Case("delete answers 202 ok", "DELETE", "/api/resource/Customer/Walk-In Customer", 202,
         given=(WALK_IN,), then=deleted("Customer", "Walk-In Customer")),
    # Lists, counts, singles
    Case("list pages 20 by default", "GET", "/api/resource/Account", 200,
         then=first_page_of_20),
    Case("page length 0 is everything", "GET", "/api/resource/Account", 200,
         params={"limit_page_length": 0}, then=all_rows),
    Case("limit_start pages on", "GET", "/api/resource/Account", 200,
         params={"limit_start": 20, "limit_page_length": 20, "order_by": "name asc"},
         then=second_page),
    Case("filters and fields are JSON", "GET", "/api/resource/Account", 200,
         params={"filters": json.dumps([["company", "=", DEFAULT], ["account_type", "=", "Cash"]]),
                 "fields": json.dumps(["name", "account_type"]), "order_by": "name asc"},
         then=cash_ledgers_only),
    Case("filters: in, with fields (a Check field never set reads 0)", "GET",
         "/api/resource/Warehouse", 200,
         params={"filters": json.dumps([["name", "in", ["Stores - EDL", "Finished Goods - EDL",
                                                          "Nowhere - EDL"]]]),
                 "fields": json.dumps(["name", "company", "disabled"]), "order_by": "name asc"},
         then=body_is({"data": [
             {"name": "Finished Goods - EDL", "company": DEFAULT, "disabled": 0},
             {"name": "Stores - EDL", "company": DEFAULT, "disabled": 0},
         ]})),
    Case("filters: not in and !=", "GET", "/api/resource/Warehouse", 200,
         params={"filters": json.dumps([["company", "=", DEFAULT], ["is_group", "!=", 1],
                                        ["name", "not in", ["Stores - EDL"]]]),
                 "order_by": "name asc"},
         then=body_is({"data": [{"name": "Finished Goods - EDL"},
                                {"name": "Goods In Transit - EDL"},
                                {"name": "Work In Progress - EDL"}]})),
    Case("get_count", "GET", COUNT, 200, params={"doctype": "Account"}, then=message_is(82)),
    Case("get_count takes filters", "GET", COUNT, 200,
         params={"doctype": "Account",
                 "filters": json.dumps([["company", "=", DEFAULT], ["is_group", "=", 0]])},
         then=count_matches_list),
    Case("get_single_value", "GET", SINGLE_VALUE, 200,
         params={"doctype": "System Settings", "field": "setup_complete"}, then=message_is(1)),
    Case("a single by its own name, empty fields left out", "GET",
         "/api/resource/Selling Settings/Selling Settings", 200,
         then=single_without_empty_fields),
    Case("a single without its name is a 500", "GET", "/api/resource/Selling Settings", 500),
    Case("a child doctype listed directly is 403", "GET", "/api/resource/POS Payment Method",
         403, "PermissionError"),
    # Errors
    Case("missing document is 404 with a message", "GET", "/api/resource/Company/Nobody Ltd",
         404, "DoesNotExistError", "Company Nobody Ltd not found"),
    Case("delete of a missing document: exc_type only", "DELETE",
         "/api/resource/Company/Nobody Ltd", 404, "DoesNotExistError",
         then=body_is({"exc_type": "DoesNotExistError"})),
    Case("unknown doctype is 500 ImportError", "GET", "/api/resource/No Such Doctype", 500,
         "ImportError"),
    Case("malformed JSON is 500 JSONDecodeError", "POST", "/api/resource/Customer", 500,
         "JSONDecodeError", raw="{not json"),
    Case("empty Warehouse body is a 500", "POST", "/api/resource/Warehouse", 500,
         "AttributeError", body={}),
    Case("empty Customer body is a 500", "POST", "/api/resource/Customer", 500,
         "AttributeError", body={}),
    Case("unknown chart is 500 IndexError, nothing made", "POST", "/api/resource/Company", 500,
         "IndexError", body=company_body(chart_of_accounts="Kenya Chart of Accounts"),
         then=no_company_left(ACME)),
    Case("same company again is 409", "POST", "/api/resource/Company", 409,
         "DuplicateEntryError", f"Company <strong>{ACME}</strong> already exists",
         body=company_body(), given=(ACME_CO,), then=duplicate_title),
    Case("used abbreviation is 417", "POST", "/api/resource/Company", 417, "ValidationError",
         "Abbreviation already used for another company", body=company_body("Other", "EDL"),
         then=no_company_left("Other")),
    Case("missing link is 417 LinkValidationError", "POST", "/api/resource/Company", 417,
         "LinkValidationError", "Could not find Default Currency: XXX",
         body=company_body(default_currency="XXX")),
    Case("bad select value is 417", "POST", "/api/resource/Customer", 417, "ValidationError",
         'Customer Type cannot be "Alien". It should be one of "Company", "Individual", '
         '"Partnership"', body={"customer_name": "Zed", "customer_type": "Alien"}),
    Case("mandatory field missing is 417", "POST", "/api/resource/Item", 417, "MandatoryError",
         "[Item, Soda 500ml]: item_group", body={"item_code": "Soda 500ml", "stock_uom": "Nos"}),
    # Site bootstrap: the setup wizard
    Case("fresh site: no Company before the wizard", "POST", "/api/resource/Company", 417,
         "LinkValidationError", "Could not find Warehouse Type: Transit", body=company_body(),
         fresh=True, then=no_company_left(ACME)),
    Case("fresh site: setup not complete", "GET", SINGLE_VALUE, 200, fresh=True,
         params={"doctype": "System Settings", "field": "setup_complete"}, then=message_is(0)),
    Case("fresh site: the wizard over REST", "POST", WIZARD, 200, body={"args": WIZARD_ARGS},
         fresh=True, then=wizard_fixtures),
    Case("fresh site: a failed wizard is rolled back", "POST", WIZARD, 500, "IndexError",
         body={"args": {**WIZARD_ARGS, "chart_of_accounts": "No Such Chart"}}, fresh=True,
         then=still_fresh),
    # Company and chart of accounts
    Case("company: Standard chart and its side effects", "POST", "/api/resource/Company", 200,
         body=company_body(), then=standard_company),
    Case("company: Standard with Numbers", "POST", "/api/resource/Company", 200,
         body=company_body("Numbered Ltd", "NUM", chart_of_accounts="Standard with Numbers"),
         then=numbered_company),
    Case("company: abbr generated when not given", "POST", "/api/resource/Company", 200,
         body=company_body("Nairobi Fresh Grocers", None), then=generated_abbr),
    Case("company: its currency gets enabled", "POST", "/api/resource/Company", 200,
         body=company_body("Kampala Ltd", "KLA", default_currency="UGX", country="Uganda"),
         given=(currency_disabled("UGX"),), then=currency_enabled),
    Case("charts offered for Kenya", "GET", CHARTS, 200, params={"country": "Kenya"},
         then=message_is(["Standard", "Standard with Numbers"])),
    Case("company: delete while nothing links to it", "DELETE", f"/api/resource/Company/{ACME}",
         202, given=(ACME_CO,), then=company_gone),
    Case("company: delete with a POS profile is 417", "DELETE", f"/api/resource/Company/{ACME}",
         417, "LinkExistsError", given=(ACME_CO, ACME_POS), then=company_kept),
    Case("company: transaction deletion, then profile and company go", "POST", DELETION, 200,
         body={"company": ACME}, given=(ACME_CO, ACME_POS, OPEN_ENTRY),
         then=then_profile_and_company_delete),
    # Warehouses
    Case("warehouse: suffixed with the abbreviation", "POST", "/api/resource/Warehouse", 200,
         body={"warehouse_name": "Main Store", "company": DEFAULT,
               "parent_warehouse": "All Warehouses - EDL"},
         then=answer_is(name="Main Store - EDL", parent_warehouse="All Warehouses - EDL")),
    Case("warehouse: not suffixed twice", "POST", "/api/resource/Warehouse", 200,
         body={"warehouse_name": "Main Store - EDL", "company": DEFAULT},
         then=answer_is(name="Main Store - EDL")),
    Case("warehouse: without company, the default company", "POST", "/api/resource/Warehouse",
         200, body={"warehouse_name": "Main Store"},
         then=answer_is(name="Main Store - EDL", company=DEFAULT)),
    Case("warehouse: without parent, no parent", "POST", "/api/resource/Warehouse", 200,
         body={"warehouse_name": "Loose Store", "company": DEFAULT}, then=without_parent),
    Case("warehouse: duplicate is 409", "POST", "/api/resource/Warehouse", 409,
         "DuplicateEntryError", "Warehouse <strong>Stores - EDL</strong> already exists",
         body={"warehouse_name": "Stores", "company": DEFAULT}),
    # Customer
    Case("customer: only the name is needed", "POST", "/api/resource/Customer", 200,
         body={"customer_name": "Walk-In Customer"},
         then=answer_is(name="Walk-In Customer", customer_type="Company",
                        territory="Rest Of The World")),
    Case("customer: a duplicate name is renamed, not refused", "POST", "/api/resource/Customer",
         200, message="Changed customer name to 'Walk-In Customer - 1' as 'Walk-In Customer' "
         "already exists.", body={"customer_name": "Walk-In Customer"}, given=(WALK_IN,),
         then=renamed),
    Case("customer: defaults from Selling Settings", "POST", "/api/resource/Customer", 200,
         body={"customer_name": "Grouped Ltd"},
         given=(put("Selling Settings", "Selling Settings", {"customer_group": "Commercial"}),),
         then=answer_is(customer_group="Commercial", territory="Rest Of The World")),
    # Item
    Case("item: standard_rate makes an Item Price", "POST", "/api/resource/Item", 200,
         body={"item_code": "Soda 500ml", "item_name": "Soda", "item_group": "Products",
               "stock_uom": "Nos", "is_stock_item": 1, "standard_rate": 80},
         then=item_price),
    Case("item: same item_code is 409", "POST", "/api/resource/Item", 409,
         "DuplicateEntryError", body={"item_code": "Soda", "item_group": "Products"},
         given=(post("Item", {"item_code": "Soda", "item_group": "Products"}),)),
    Case("item: deleted while nothing links to it, its price with it", "DELETE",
         "/api/resource/Item/Soda", 202,
         given=(post("Item", {"item_code": "Soda", "item_group": "Products",
                              "standard_rate": 80}),), then=item_and_price_gone),
    Case("item: delete of a missing one is a bare 404", "DELETE", "/api/resource/Item/Nope",
         404, "DoesNotExistError", then=body_is({"exc_type": "DoesNotExistError"})),
    # Selling and Stock Settings
    Case("settings: PUT merges, unknown fields ignored", "PUT",
         "/api/resource/Selling Settings/Selling Settings", 200,
         body={"so_required": "Yes", "no_such_field": 1}, then=merged_settings),
    Case("settings: a bad link is 417", "PUT", "/api/resource/Selling Settings/Selling Settings",
         417, "LinkValidationError", "Could not find Customer Group: Nope",
         body={"customer_group": "Nope", "so_required": "Yes"}, then=selling_unchanged),
    Case("settings: a bad select value is 417", "PUT",
         "/api/resource/Selling Settings/Selling Settings", 417, "ValidationError",
         body={"so_required": "Maybe"}, then=selling_unchanged),
    Case("settings: Stock Settings merge too", "PUT",
         "/api/resource/Stock Settings/Stock Settings", 200, body={"allow_negative_stock": 1},
         then=stock_merged),
    Case("settings: a bad Stock Settings select value is 417", "PUT",
         "/api/resource/Stock Settings/Stock Settings", 417, "ValidationError",
         body={"valuation_method": "Average", "allow_negative_stock": 1},
         then=stock_unchanged),
    # POS Profile
    Case("pos profile: made, currency from the company", "POST", "/api/resource/POS Profile",
         200, body=profile_body(), given=(ACME_CO,),
         then=answer_is(name="Acme POS", currency="KES", selling_price_list="Standard Selling")),
    Case("pos profile: named by __newname", "POST", "/api/resource/POS Profile", 200,
         body=profile_body(None, __newname="Acme POS"), given=(ACME_CO,),
         then=answer_is(name="Acme POS")),
    Case("pos profile: a name is needed", "POST", "/api/resource/POS Profile", 417,
         "ValidationError", "Please set the document name", body=profile_body(None),
         given=(ACME_CO,)),
    Case("pos profile: mandatory fields", "POST", "/api/resource/POS Profile", 417,
         "MandatoryError", "[POS Profile, Acme POS]: warehouse, write_off_account, "
         "write_off_cost_center",
         body={"name": "Acme POS", "company": ACME,
               "payments": [{"mode_of_payment": "Cash", "default": 1}]}, given=(ACME_CO,)),
    Case("pos profile: warehouse of another company", "POST", "/api/resource/POS Profile", 417,
         "ValidationError", f"Stores - EDL does not belong to Company {ACME}",
         body=profile_body(warehouse="Stores - EDL"), given=(ACME_CO,)),
    Case("pos profile: payments are mandatory", "POST", "/api/resource/POS Profile", 417,
         "ValidationError", "Payment methods are mandatory…", body=profile_body(payments=[]),
         given=(ACME_CO,)),
    Case("pos profile: one default payment", "POST", "/api/resource/POS Profile", 417,
         "ValidationError", "Please select a default mode of payment",
         body=profile_body(payments=[{"mode_of_payment": "Cash", "default": 0}]),
         given=(ACME_CO,)),
    Case("pos profile: Credit Card has no account yet", "POST", "/api/resource/POS Profile", 417,
         "ValidationError", "Please set default Cash or Bank account in Mode of Payments "
         "Credit Card",
         body=profile_body(payments=[{"mode_of_payment": "Cash", "default": 1},
                                     {"mode_of_payment": "Credit Card", "default": 0}]),
         given=(ACME_CO,)),
    Case("pos profile: Credit Card once it has an account", "POST", "/api/resource/POS Profile",
         200, body=profile_body(payments=[{"mode_of_payment": "Cash", "default": 1},
                                          {"mode_of_payment": "Credit Card", "default": 0}]),
         given=(ACME_CO, CARD_ACCOUNT), then=answer_is(name="Acme POS")),
    Case("mode of payment: account of another company is 417", "PUT",
         "/api/resource/Mode of Payment/Credit Card", 417, "ValidationError",
         f"Account Cash - EDL does not match with Company {ACME} in Mode of Account: "
         "Credit Card",
         body={"accounts": [{"company": ACME, "default_account": "Cash - EDL"}]},
         given=(ACME_CO,)),
    Case("pos profile: a PUT with a table replaces it", "PUT",
         "/api/resource/POS Profile/Acme POS", 200,
         body={"payments": [{"mode_of_payment": "Credit Card", "default": 1}]},
         given=(ACME_CO, CARD_ACCOUNT, ACME_POS), then=payments_replaced),
    # POS Opening Entry
    Case("opening entry: a draft, named by series", "POST", "/api/resource/POS Opening Entry",
         200, body=entry_body(), given=(ACME_CO, ACME_POS), then=draft_entry),
    Case("opening entry: submitted by PUT docstatus 1", "PUT",
         f"/api/resource/POS Opening Entry/{FIRST_ENTRY}", 200, body={"docstatus": 1},
         given=(ACME_CO, ACME_POS, post("POS Opening Entry", entry_body())),
         then=answer_is(name=FIRST_ENTRY, status="Open", docstatus=1)),
    Case("opening entry: or POSTed with docstatus 1", "POST", "/api/resource/POS Opening Entry",
         200, body=entry_body(docstatus=1), given=(ACME_CO, ACME_POS),
         then=answer_is(name=FIRST_ENTRY, status="Open", docstatus=1)),
    Case("opening entry: balance details are mandatory", "POST",
         "/api/resource/POS Opening Entry", 417, "MandatoryError",
         body=entry_body(balance_details=[]), given=(ACME_CO, ACME_POS)),
    Case("opening entry: company must be the profile's", "POST",
         "/api/resource/POS Opening Entry", 417, body=entry_body(company=DEFAULT),
         given=(ACME_CO, ACME_POS)),
    Case("opening entry: a second open one is accepted", "POST",
         "/api/resource/POS Opening Entry", 200, body=entry_body(docstatus=1),
         given=(ACME_CO, ACME_POS, OPEN_ENTRY), then=two_open_entries),
    Case("opening entry: check_opening_entry lists a user's open ones", "GET", CHECK_OPENING,
         200, params={"user": "Administrator"}, given=(ACME_CO, ACME_POS, OPEN_ENTRY, OPEN_ENTRY),
         then=open_entries_of_user),
    # Changing documents after provisioning
    Case("after: a warehouse disabled and enabled by PUT", "PUT",
         "/api/resource/Warehouse/Main Store - EDL", 200, body={"disabled": 1},
         given=(post("Warehouse", {"warehouse_name": "Main Store", "company": DEFAULT}),),
         then=toggled("Warehouse", "Main Store - EDL")),
    Case("after: the walk-in customer disabled and enabled by PUT", "PUT",
         "/api/resource/Customer/Walk-In Customer", 200, body={"disabled": 1}, given=(WALK_IN,),
         then=toggled("Customer", "Walk-In Customer")),
    Case("after: a POS profile cannot be disabled during a session", "PUT",
         "/api/resource/POS Profile/Acme POS", 417, "ValidationError",
         "POS Profile Acme POS cannot be disabled as there are ongoing POS sessions.",
         body={"disabled": 1}, given=(ACME_CO, ACME_POS, OPEN_ENTRY),
         then=profile_still_enabled),
    Case("after: a POS profile with an opening entry cannot be deleted", "DELETE",
         "/api/resource/POS Profile/Acme POS", 417, "LinkExistsError",
         given=(ACME_CO, ACME_POS, OPEN_ENTRY), then=profile_kept),
]  # fmt: skip


@pytest.fixture
def api(simulator_server, sim) -> Api:
    return Api(simulator_server.url)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case: Case, api: Api, sim) -> None:
    if case.fresh:
        sim.reset(fresh_site=True)
    for step in case.given:
        step(api)

    answer = api.send(case.method, case.path, body=case.body, raw=case.raw, params=case.params,
                      auth=case.auth, headers=case.headers)  # fmt: skip

    assert answer.status_code == case.status, answer.text
    is_json = answer.headers["Content-Type"].startswith("application/json")
    if case.exc_type is not None:
        assert answer.json()["exc_type"] == case.exc_type
    elif is_json and answer.status_code < 300:
        assert "exc_type" not in answer.json()
    if case.message is not None:
        got = server_messages(answer)[0]["message"].strip()
        if case.message.endswith("…"):
            assert got.startswith(case.message[:-1])
        else:
            assert got == case.message
    if case.then is not None:
        case.then(api, answer)
