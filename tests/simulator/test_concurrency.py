"""Parallel requests on one site, as the contract measured them on a real ERPNext.

Requests start together behind a barrier. Company builds take their (scaled) real time on a
private simulator, so that parallel creations do overlap as they did on the real site.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest
import requests

from provisioner.simulator import SimulatorServer
from tests.simulator.conftest import (
    HEADERS,
    company_body,
    count,
    private_simulator,
    simulator_of,
)

COMPANIES = "/api/resource/Company"
CUSTOMERS = "/api/resource/Customer"
COLLISION = re.compile(r"Could not find Row #\d+: Default Account: Cash - (\w+)")


def all_at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Runs the calls in parallel threads released together; answers in the calls' order."""
    barrier = Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def post(url: str, path: str, body: dict[str, Any]) -> Callable[[], requests.Response]:
    return lambda: requests.post(f"{url}{path}", json=body, headers=HEADERS, timeout=30)


@pytest.fixture(scope="module")
def slow_server() -> Iterator[SimulatorServer]:
    """Company builds take a fifth of their real 1.9 s, wide enough to overlap for sure."""
    with private_simulator(latency="0.2") as server:
        yield server


@pytest.fixture
def slow_url(slow_server) -> str:
    simulator_of(slow_server).reset()
    return slow_server.url


def test_fifty_parallel_inserts_of_one_company_make_it_once(url):
    body = company_body("Acme Kenya Ltd", "AKL")
    answers = all_at_once([post(url, COMPANIES, body) for _ in range(50)])

    assert Counter(a.status_code for a in answers) == {200: 1, 409: 49}
    assert {a.json()["exc_type"] for a in answers if a.status_code == 409} == {
        "DuplicateEntryError"
    }
    assert count(url, "Company", [["name", "=", "Acme Kenya Ltd"]]) == 1
    assert count(url, "Account", [["company", "=", "Acme Kenya Ltd"]]) == 82


@pytest.mark.parametrize("parallel", [2, 4])
def test_different_companies_at_once_collide_and_the_refused_ones_leave_nothing(slow_url, parallel):
    abbrs = [f"PC{i}" for i in range(parallel)]
    bodies = {abbr: company_body(f"Parallel {abbr} Ltd", abbr) for abbr in abbrs}
    answers = dict(
        zip(abbrs, all_at_once([post(slow_url, COMPANIES, b) for b in bodies.values()]),
            strict=True)
    )  # fmt: skip

    made = [abbr for abbr, a in answers.items() if a.status_code == 200]
    refused = [abbr for abbr, a in answers.items() if a.status_code != 200]
    assert made
    assert refused
    for abbr in refused:
        answer = answers[abbr]
        assert (answer.status_code, answer.json()["exc_type"]) == (417, "LinkValidationError")
        other = COLLISION.search(answer.json()["exception"])
        assert other is not None, answer.json()
        assert other.group(1) in abbrs
        assert other.group(1) != abbr  # the other company being made at that moment
        name = bodies[abbr]["company_name"]
        for doctype in ("Company", "Account", "Warehouse", "Cost Center"):
            field = "name" if doctype == "Company" else "company"
            assert count(slow_url, doctype, [[field, "=", name]]) == 0

    for abbr in refused:  # made one at a time afterwards, each succeeds
        assert post(slow_url, COMPANIES, bodies[abbr])().status_code == 200
    assert count(slow_url, "Company", [["name", "like", "Parallel %"]]) == parallel
    assert count(slow_url, "Account", [["company", "like", "Parallel %"]]) == 82 * parallel


def test_parallel_customers_of_one_name_are_refused_or_renamed_never_5xx(url):
    answers = all_at_once(
        [post(url, CUSTOMERS, {"customer_name": "Walk-In Customer"}) for _ in range(20)]
    )

    assert {a.status_code for a in answers} <= {200, 409}
    saved = [a.json()["data"]["name"] for a in answers if a.status_code == 200]
    assert saved.count("Walk-In Customer") == 1
    assert all(re.fullmatch(r"Walk-In Customer( - \d+)?", name) for name in saved)
    assert len(set(saved)) == len(saved)
    assert count(url, "Customer") == len(saved)
    refused = [a.json()["exc_type"] for a in answers if a.status_code == 409]
    assert set(refused) <= {"DuplicateEntryError"}


def test_mixed_parallel_reads_and_writes_stay_consistent(tmp_path):
    """Sixteen threads write customers, warehouses and settings and read lists, documents and
    counts at once, on a simulator that also writes its state file after every change."""
    with private_simulator(state_file=tmp_path / "state.json") as server:
        url, sim = server.url, simulator_of(server)
        warehouses = count(url, "Warehouse")
        numbers = itertools.count()

        def work(i: int) -> requests.Response:
            n = next(numbers)
            kind = i % 6
            if kind == 0:
                return post(url, CUSTOMERS, {"customer_name": f"Customer {n}"})()
            if kind == 1:
                body = {"warehouse_name": f"Shelf {n}", "company": "Engine Default Ltd"}
                return post(url, "/api/resource/Warehouse", body)()
            if kind == 2:
                return requests.put(
                    f"{url}/api/resource/Selling Settings/Selling Settings",
                    json={"so_required": "Yes" if n % 2 else "No"}, headers=HEADERS, timeout=30,
                )  # fmt: skip
            if kind == 3:
                return requests.get(
                    f"{url}/api/resource/Account", params={"limit_page_length": 0},
                    headers=HEADERS, timeout=30,
                )  # fmt: skip
            if kind == 4:
                return requests.get(
                    f"{url}/api/method/frappe.client.get_count",
                    params={"doctype": "Customer"}, headers=HEADERS, timeout=30,
                )  # fmt: skip
            return requests.get(
                f"{url}/api/resource/Mode of Payment/Cash", headers=HEADERS, timeout=30
            )

        before = sim.calls()[-1]["seq"]
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(work, range(240)))
        logged = sim.calls(since=before)

        assert Counter(a.status_code for a in answers) == {200: 240}
        assert count(url, "Customer") == 40
        assert count(url, "Warehouse") == warehouses + 40
        assert all(len(a.json()["data"]) == 82 for a in answers[3::6])
        assert len(logged) == 240
        assert len({c["seq"] for c in logged}) == 240
        assert (tmp_path / "state.json").exists()


def test_pos_profiles_of_different_companies_in_parallel_all_succeed(url):
    companies = {"North Ltd": "NTH", "South Ltd": "STH", "East Ltd": "EST"}
    for name, abbr in companies.items():  # one at a time, as the contract requires
        assert post(url, COMPANIES, company_body(name, abbr))().status_code == 200
    profiles = [
        {"name": f"{abbr} POS", "company": name, "warehouse": f"Stores - {abbr}",
         "write_off_account": f"Write Off - {abbr}", "write_off_cost_center": f"Main - {abbr}",
         "payments": [{"mode_of_payment": "Cash", "default": 1}]}
        for name, abbr in companies.items()
    ]  # fmt: skip

    answers = all_at_once([post(url, "/api/resource/POS Profile", p) for p in profiles])

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert count(url, "POS Profile") == 3
