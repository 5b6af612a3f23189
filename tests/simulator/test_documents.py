"""How documents change after they were made: what the simulator does beyond the contract's
measured cases, each following Frappe's own rules (answers without nulls, Check fields that
read 0, links that stop a delete unless the linking document is cancelled)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.simulator.conftest import HEADERS

ACME = "Acme Kenya Ltd"
PROFILE = "Acme POS"


class Site:
    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.url + path, json=body, headers=HEADERS, timeout=10)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.send(method, path, body)
        assert answer.status_code in (200, 202), answer.text
        return answer.json()["data"]

    def doc(self, doctype: str, name: str) -> dict[str, Any]:
        return self.ok("GET", f"/api/resource/{doctype}/{name}")


@pytest.fixture
def site(url) -> Site:
    return Site(url)


@pytest.fixture
def open_session(site) -> str:
    """Acme's company, its POS profile (Walk-In Customer, Cash) and an open session."""
    site.ok("POST", "/api/resource/Company", {
        "company_name": ACME, "abbr": "AKL", "default_currency": "KES", "country": "Kenya",
        "chart_of_accounts": "Standard",
    })  # fmt: skip
    site.ok("POST", "/api/resource/Customer", {"customer_name": "Walk-In Customer"})
    site.ok("POST", "/api/resource/POS Profile", {
        "name": PROFILE, "company": ACME, "warehouse": "Stores - AKL",
        "customer": "Walk-In Customer", "write_off_account": "Write Off - AKL",
        "write_off_cost_center": "Main - AKL",
        "payments": [{"mode_of_payment": "Cash", "default": 1}],
    })  # fmt: skip
    entry = site.ok("POST", "/api/resource/POS Opening Entry", {
        "pos_profile": PROFILE, "user": "Administrator", "company": ACME,
        "period_start_date": "2026-03-02 08:00:00", "docstatus": 1,
        "balance_details": [{"mode_of_payment": "Cash", "opening_amount": 0}],
    })  # fmt: skip
    return entry["name"]


def refused(answer: requests.Response, exc_type: str) -> str:
    assert (answer.status_code, answer.json()["exc_type"]) == (417, exc_type), answer.text
    return answer.json()["exception"]


def test_answers_leave_null_fields_out_and_checks_read_0(site):
    made = site.ok("POST", "/api/resource/Warehouse",
                   {"warehouse_name": "Loose", "company": "Engine Default Ltd"})  # fmt: skip
    for doc in (made, site.doc("Warehouse", "Loose - EDL")):
        assert "parent_warehouse" not in doc
        assert (doc["disabled"], doc["is_group"]) == (0, 0)


@pytest.mark.parametrize(
    ("doctype", "name", "linked_with"),
    [
        ("Customer", "Walk-In Customer", f"POS Profile {PROFILE}"),
        ("Warehouse", "Stores - AKL", f"POS Profile {PROFILE}"),
        ("Mode of Payment", "Cash", f"POS Profile {PROFILE} at Row: 1"),
        ("POS Profile", PROFILE, "POS Opening Entry POS-OPE-"),
    ],
)
def test_a_linked_document_cannot_be_deleted(site, open_session, doctype, name, linked_with):
    exception = refused(site.send("DELETE", f"/api/resource/{doctype}/{name}"), "LinkExistsError")
    assert f"Cannot delete or cancel because {doctype} {name} is linked with {linked_with}" in (
        exception
    )
    assert site.doc(doctype, name)["name"] == name


def test_a_cancelled_session_no_longer_holds_the_profile(site, open_session):
    site.ok("PUT", f"/api/resource/POS Opening Entry/{open_session}", {"docstatus": 2})
    assert site.doc("POS Opening Entry", open_session)["status"] == "Cancelled"
    assert site.ok("PUT", f"/api/resource/POS Profile/{PROFILE}", {"disabled": 1})["disabled"] == 1
    assert site.ok("PUT", f"/api/resource/POS Profile/{PROFILE}", {"disabled": 0})["disabled"] == 0
    assert site.send("DELETE", f"/api/resource/POS Profile/{PROFILE}").status_code == 202


def test_a_session_is_not_closed_by_a_put_of_its_status(site, open_session):
    answer = site.send("PUT", f"/api/resource/POS Opening Entry/{open_session}",
                       {"status": "Closed"})  # fmt: skip
    assert "Not allowed to change fields after submission" in refused(answer, "ValidationError")
    assert site.doc("POS Opening Entry", open_session)["status"] == "Open"
    refused(site.send("PUT", f"/api/resource/POS Profile/{PROFILE}", {"disabled": 1}),
            "ValidationError")  # fmt: skip


def test_enabling_a_profile_during_a_session_is_allowed(site, open_session):
    assert site.ok("PUT", f"/api/resource/POS Profile/{PROFILE}", {"disabled": 0})["disabled"] == 0
