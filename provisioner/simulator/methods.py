"""The whitelisted methods (`/api/method/<dotted.path>`) the steps and the contract use."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.simulator import charts
from provisioner.simulator.documents import meta
from provisioner.simulator.engine import Simulator
from provisioner.simulator.errors import MandatoryError, ServerError
from provisioner.simulator.store import SiteData


@dataclass(frozen=True)
class MethodCall:
    sim: Simulator
    site: SiteData
    params: dict[str, Any]


Method = Callable[[MethodCall], Any]
WIZARD = "frappe.desk.page.setup_wizard.setup_wizard.setup_complete"
NO_AUTH = {"ping"}


def json_param(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ServerError("JSONDecodeError", "Expecting value: line 1 column 1") from None
    return value


def required(params: dict[str, Any], name: str, method: str) -> Any:
    value = params.get(name)
    if value in (None, ""):
        raise ServerError(
            "TypeError", f"{method}() missing 1 required positional argument: '{name}'"
        )
    return value


def ping(_call: MethodCall) -> Any:
    return "pong"


def logged_user(_call: MethodCall) -> Any:
    return "Administrator"


def get_count(call: MethodCall) -> Any:
    doctype = required(call.params, "doctype", "get_count")
    meta(doctype)
    with call.site.lock:
        return call.site.count(doctype, json_param(call.params.get("filters")))


def get_single_value(call: MethodCall) -> Any:
    doctype = required(call.params, "doctype", "get_single_value")
    field = required(call.params, "field", "get_single_value")
    if not meta(doctype).single:
        raise ServerError("AttributeError", f"'{doctype}' is not a single doctype")
    with call.site.lock:
        return call.site.single(doctype).get(field)


def charts_for_country(call: MethodCall) -> Any:
    return charts.charts_for_country(required(call.params, "country", "get_charts_for_country"))


def setup_complete(call: MethodCall) -> Any:
    call.sim.run_wizard(call.site, json_param(call.params.get("args")))
    return {"status": "ok"}


def check_opening_entry(call: MethodCall) -> Any:
    user = required(call.params, "user", "check_opening_entry")
    with call.site.lock:
        return call.site.query(
            "POS Opening Entry",
            filters=[["user", "=", user], ["docstatus", "=", 1], ["status", "=", "Open"]],
            fields=["name", "company", "pos_profile", "period_start_date"],
            order_by="creation desc",
            length=0,
        )


def transaction_deletion(call: MethodCall) -> Any:
    """Removes the company's transactions (here: POS opening entries), keeps its masters."""
    company, site = call.params.get("company"), call.site
    if not company:
        raise MandatoryError("[Transaction Deletion Record, new]: company")
    with site.lock:
        if not site.exists("Company", company):
            raise ServerError("DoesNotExistError", f"Company {company} not found")
        entries = [e["name"] for e in site.table("POS Opening Entry").values()
                   if e["company"] == company]  # fmt: skip
        for name in entries:
            site.remove("POS Opening Entry", name)
        record = site.next_in_series("TDL-")
    return {"name": record, "company": company, "status": "Completed", "deleted": len(entries)}


METHODS: dict[str, Method] = {
    "ping": ping,
    "frappe.auth.get_logged_user": logged_user,
    "frappe.client.get_count": get_count,
    "frappe.client.get_single_value": get_single_value,
    "erpnext.accounts.doctype.account.chart_of_accounts.chart_of_accounts.get_charts_for_country": (
        charts_for_country
    ),
    WIZARD: setup_complete,
    "erpnext.selling.page.point_of_sale.point_of_sale.check_opening_entry": check_opening_entry,
    "erpnext.setup.doctype.company.company.create_transaction_deletion_request": (
        transaction_deletion
    ),
}


def find(name: str) -> Method:
    method = METHODS.get(name)
    if method is None:
        raise ServerError("AttributeError", f"Failed to get method for command {name}")
    return method
