"""Helpers for the simulator's own tests: plain HTTP, and private simulators with options."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from provisioner.simulator import Simulator, SimulatorServer, create_simulator
from tests.conftest import SIM_KEY, SIM_SECRET

HEADERS = {"Authorization": f"token {SIM_KEY}:{SIM_SECRET}"}
ADMIN = "/__simulator__"


@contextmanager
def private_simulator(**options: Any) -> Iterator[SimulatorServer]:
    """A simulator of its own (a seed, a latency scale, a state file), served on a free port."""
    app = create_simulator(SIM_KEY, SIM_SECRET, **{"latency": "zero", **options})
    server = SimulatorServer(app).start()
    try:
        yield server
    finally:
        server.stop()


def simulator_of(server: SimulatorServer) -> Simulator:
    return server.app.extensions["erpnext_simulator"]


def company_body(name: str, abbr: str) -> dict[str, Any]:
    return {"company_name": name, "abbr": abbr, "default_currency": "KES", "country": "Kenya",
            "chart_of_accounts": "Standard"}  # fmt: skip


def count(
    url: str,
    doctype: str,
    filters: list[list[Any]] | None = None,
    headers: dict[str, str] = HEADERS,
) -> int:
    answer = requests.get(
        f"{url}/api/method/frappe.client.get_count",
        params={"doctype": doctype, "filters": json.dumps(filters or [])},
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["message"]


@pytest.fixture
def url(simulator_server, sim) -> str:
    """The shared simulator's address, its state reset for this test."""
    return simulator_server.url
