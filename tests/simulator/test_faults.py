"""Faults on demand, the call log, the admin API, the command line and several sites.

Every fault kind is added both through the Python API (`sim.add_fault`) and through the
admin API (`POST /__simulator__/faults`); the `add_fault` fixture runs each test both ways.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner.simulator.faults import FaultSpecError
from tests.simulator.conftest import (
    ADMIN,
    HEADERS,
    count,
    private_simulator,
    simulator_of,
)

CUSTOMERS = "/api/resource/Customer"
PING = "/api/method/ping"
ROOT = Path(__file__).resolve().parents[2]

AddFault = Callable[..., dict[str, Any]]


@pytest.fixture(params=["python", "http"])
def add_fault(request, url, sim) -> AddFault:
    """Adds a fault through the Python API or through the admin API."""
    if request.param == "python":
        return sim.add_fault

    def over_http(**spec: Any) -> dict[str, Any]:
        answer = requests.post(f"{url}{ADMIN}/faults", json=spec, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()

    return over_http


def new_customer(url: str, name: str, headers: dict[str, str] = HEADERS) -> requests.Response:
    return requests.post(
        f"{url}{CUSTOMERS}", json={"customer_name": name}, headers=headers, timeout=10
    )


def customer_names(url: str) -> list[str]:
    answer = requests.get(
        f"{url}{CUSTOMERS}", params={"limit_page_length": 0}, headers=HEADERS, timeout=10
    )
    return sorted(row["name"] for row in answer.json()["data"])


def last_call(url: str) -> dict[str, Any]:
    return requests.get(f"{url}{ADMIN}/calls", timeout=10).json()["calls"][-1]


def first_message(answer: requests.Response) -> str:
    return json.loads(json.loads(answer.json()["_server_messages"])[0])["message"]


# -- each kind -----------------------------------------------------------------------------


def test_error_for_the_next_n_calls_of_a_method_and_path(url, add_fault):
    add_fault(kind="error", method="POST", path="^/api/resource/Customer$", count=2,
              status=503, exc_type="SessionStopped", message="Site is in maintenance")  # fmt: skip

    first, second = new_customer(url, "Alpha"), new_customer(url, "Beta")
    listing = requests.get(f"{url}{CUSTOMERS}", headers=HEADERS, timeout=10)  # a GET: no fault
    third = new_customer(url, "Gamma")

    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.json()["exc_type"] == "SessionStopped"
    assert first_message(first) == "Site is in maintenance"
    assert listing.status_code == 200
    assert customer_names(url) == ["Gamma"]  # refused before any work was done
    assert requests.get(f"{url}{ADMIN}/faults", timeout=10).json() == {"faults": []}  # used up


def test_error_answers_carry_headers_and_gateway_errors_are_html(url, add_fault):
    add_fault(kind="error", path="get_logged_user", count=1, status=429,
              exc_type="TooManyRequestsError", headers={"Retry-After": "7"})  # fmt: skip
    add_fault(kind="error", path="ping", count=1, status=502)

    limited = requests.get(
        f"{url}/api/method/frappe.auth.get_logged_user", headers=HEADERS, timeout=10
    )
    gateway = requests.get(f"{url}{PING}", timeout=10)

    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert limited.json()["exc_type"] == "TooManyRequestsError"
    assert gateway.status_code == 502
    assert gateway.headers["Content-Type"].startswith("text/html")


def test_faults_only_fire_for_their_method_path_and_site(url, sim, add_fault):
    other = sim.new_site("other.localhost", fresh=False)
    add_fault(kind="error", status=500, exc_type="QueryDeadlockError", site="other.localhost")
    add_fault(kind="error", status=500, method="DELETE")
    add_fault(kind="error", status=500, path="^/api/resource/Warehouse")

    here = new_customer(url, "Here")
    there = new_customer(
        url,
        "There",
        headers={"Authorization": f"token {other['api_key']}:{other['api_secret']}",
                 "Host": "other.localhost"},
    )  # fmt: skip

    assert here.status_code == 200
    assert (there.status_code, there.json()["exc_type"]) == (500, "QueryDeadlockError")
    assert last_call(url)["site"] == "other.localhost"


def test_error_at_a_rate_repeats_with_the_same_seed():
    """Two simulators with one seed refuse the same calls; one fault is added through the
    Python API, the other through the admin API."""
    outcomes = []
    for through in ("python", "http"):
        with private_simulator(seed=7) as server:
            spec = {"kind": "error", "path": "ping", "rate": 0.5, "status": 500}
            if through == "python":
                simulator_of(server).add_fault(**spec)
            else:
                requests.post(f"{server.url}{ADMIN}/faults", json=spec, timeout=10)
            codes = [requests.get(f"{server.url}{PING}", timeout=10).status_code for _ in range(40)]
        outcomes.append(codes)
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 500}


def test_latency_delays_the_answer_but_keeps_it(url, add_fault):
    add_fault(kind="latency", path="ping", seconds=0.2, count=1)
    add_fault(kind="latency", path="get_logged_user", seconds=0.1, max_seconds=0.15, count=1)

    answer = requests.get(f"{url}{PING}", timeout=10)
    delayed = last_call(url)
    user = requests.get(f"{url}/api/method/frappe.auth.get_logged_user", headers=HEADERS,
                        timeout=10)  # fmt: skip

    assert answer.json() == {"message": "pong"}
    assert delayed["fault"] == "latency"
    assert delayed["duration_ms"] >= 200
    assert user.json() == {"message": "Administrator"}
    assert last_call(url)["duration_ms"] >= 100


def test_timeout_holds_the_request_then_drops_it_undone(url, add_fault):
    add_fault(kind="timeout", method="POST", path=CUSTOMERS, seconds=0.2, count=1)

    with pytest.raises(requests.ConnectionError):
        new_customer(url, "Slow Ltd")

    call = last_call(url)
    assert (call["fault"], call["status"]) == ("timeout", None)
    assert call["duration_ms"] >= 200
    assert customer_names(url) == []


def test_timeout_is_a_read_timeout_for_an_impatient_client(url, add_fault):
    add_fault(kind="timeout", path="ping", seconds=1, count=1)
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{url}{PING}", timeout=0.2)


def test_drop_closes_the_connection_and_does_nothing(url, add_fault):
    add_fault(kind="drop", method="POST", path=CUSTOMERS, count=1)

    with pytest.raises(requests.ConnectionError):
        new_customer(url, "Dropped Ltd")

    assert last_call(url)["fault"] == "drop"
    assert customer_names(url) == []
    assert new_customer(url, "Dropped Ltd").status_code == 200


def test_commit_then_drop_keeps_the_work_and_loses_the_answer(url, add_fault):
    add_fault(kind="commit_then_drop", method="POST", path=CUSTOMERS, count=1)

    with pytest.raises(requests.ConnectionError):
        new_customer(url, "Walk-In Customer")
    assert customer_names(url) == ["Walk-In Customer"]

    retried = new_customer(url, "Walk-In Customer")  # a blind retry makes a second one
    assert retried.json()["data"]["name"] == "Walk-In Customer - 1"


def test_commit_then_timeout_keeps_the_work_after_holding_the_answer(url, add_fault):
    add_fault(kind="commit_then_timeout", method="POST", path=CUSTOMERS, seconds=0.2, count=1)

    with pytest.raises(requests.ConnectionError):
        new_customer(url, "Held Ltd")

    call = last_call(url)
    assert (call["fault"], call["status"]) == ("commit_then_timeout", None)
    assert call["duration_ms"] >= 200
    assert customer_names(url) == ["Held Ltd"]


# -- the admin API for faults ----------------------------------------------------------------


def test_faults_are_listed_removed_one_by_one_and_cleared(url):
    made = [
        requests.post(f"{url}{ADMIN}/faults", json=spec, timeout=10).json()
        for spec in ({"kind": "drop", "path": "ping"}, {"kind": "latency", "seconds": 0.01})
    ]
    listed = requests.get(f"{url}{ADMIN}/faults", timeout=10).json()["faults"]
    assert [(f["id"], f["kind"], f["fired"]) for f in listed] == [
        (made[0]["id"], "drop", 0), (made[1]["id"], "latency", 0),
    ]  # fmt: skip

    removed = requests.delete(f"{url}{ADMIN}/faults/{made[0]['id']}", timeout=10)
    again = requests.delete(f"{url}{ADMIN}/faults/{made[0]['id']}", timeout=10)
    assert (removed.status_code, again.status_code) == (200, 404)
    assert requests.get(f"{url}{PING}", timeout=10).json() == {"message": "pong"}

    assert requests.delete(f"{url}{ADMIN}/faults", timeout=10).json() == {"faults": []}
    assert requests.get(f"{url}{ADMIN}/faults", timeout=10).json() == {"faults": []}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"path": "ping"}, "kind"),
        ({"kind": "explode"}, "kind"),
        ({"kind": "error", "colour": "red"}, "colour"),
        ({"kind": "error", "count": 0}, "count"),
        ({"kind": "error", "count": "3"}, "count"),
        ({"kind": "error", "rate": 1.5}, "rate"),
        ({"kind": "error", "status": 99}, "status"),
        ({"kind": "latency", "seconds": -1}, "seconds"),
        ({"kind": "latency", "seconds": 2, "max_seconds": 1}, "max_seconds"),
        ({"kind": "error", "path": "(unclosed"}, "path"),
        ({"kind": "error", "method": 5}, "method"),
        ({"kind": "error", "headers": ["Retry-After"]}, "headers"),
        (["not", "an", "object"], "body"),
    ],
)
def test_a_bad_fault_spec_is_400_naming_the_field(url, sim, spec, field):
    answer = requests.post(f"{url}{ADMIN}/faults", json=spec, timeout=10)

    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert requests.get(f"{url}{ADMIN}/faults", timeout=10).json() == {"faults": []}
    if isinstance(spec, dict):
        with pytest.raises(FaultSpecError) as caught:
            sim.add_fault(**spec)
        assert caught.value.field == field


# -- the call log ----------------------------------------------------------------------------


def test_the_call_log_records_every_api_call(url):
    before = requests.get(f"{url}{ADMIN}/calls", timeout=10).json()["calls"]
    since = before[-1]["seq"] if before else 0

    requests.get(f"{url}{PING}", headers={"X-Correlation-ID": "corr-42"}, timeout=10)
    new_customer(url, "Logged Ltd")
    requests.get(f"{url}{PING}", headers={"Host": "nosuch.example.com"}, timeout=10)
    requests.get(f"{url}{ADMIN}/faults", timeout=10)  # the admin API is not logged

    calls = requests.get(f"{url}{ADMIN}/calls", params={"since": since}, timeout=10).json()
    rows = [(c["method"], c["path"], c["site"], c["status"]) for c in calls["calls"]]
    assert rows == [
        ("GET", PING, "erp.localhost", 200),
        ("POST", CUSTOMERS, "erp.localhost", 200),
        ("GET", PING, None, 404),
    ]
    first = calls["calls"][0]
    assert first["correlation_id"] == "corr-42"
    assert first["fault"] is None
    assert first["seq"] > since
    assert first["duration_ms"] >= 0


# -- several sites ---------------------------------------------------------------------------


def site_headers(made: dict[str, str], host: str | None = None) -> dict[str, str]:
    return {"Authorization": f"token {made['api_key']}:{made['api_secret']}",
            "Host": host or made["site"]}  # fmt: skip


def test_a_new_site_is_fresh_served_by_host_with_its_own_keys(url):
    answer = requests.post(f"{url}{ADMIN}/sites", json={"site": "Tenant2.localhost"}, timeout=10)
    assert answer.status_code == 201
    made = answer.json()
    assert made["site"] == "tenant2.localhost"

    own = site_headers(made)
    user = requests.get(f"{url}/api/method/frappe.auth.get_logged_user", headers=own, timeout=10)
    assert user.json() == {"message": "Administrator"}
    setup = requests.get(
        f"{url}/api/method/frappe.client.get_single_value",
        params={"doctype": "System Settings", "field": "setup_complete"}, headers=own, timeout=10,
    )  # fmt: skip
    assert setup.json() == {"message": 0}
    company = requests.post(f"{url}/api/resource/Company", headers=own, timeout=10,
                            json={"company_name": "T2 Ltd", "default_currency": "KES"})  # fmt: skip
    assert company.json()["exc_type"] == "LinkValidationError"  # before its wizard

    default_keys = {**HEADERS, "Host": "tenant2.localhost"}
    assert requests.get(f"{url}{CUSTOMERS}", headers=default_keys, timeout=10).status_code == 401
    assert count(url, "Company") == 1  # the default site is untouched

    sites = requests.get(f"{url}{ADMIN}/sites", timeout=10).json()
    assert sites == {"sites": ["erp.localhost", "tenant2.localhost"], "archived": []}


def test_site_admin_refuses_bad_and_duplicate_names(url):
    missing = requests.post(f"{url}{ADMIN}/sites", json={}, timeout=10)
    assert (missing.status_code, missing.json()["field"]) == (400, "site")
    requests.post(f"{url}{ADMIN}/sites", json={"site": "t3.localhost"}, timeout=10)
    again = requests.post(f"{url}{ADMIN}/sites", json={"site": "t3.localhost"}, timeout=10)
    assert again.status_code == 409
    for job in ("keys", "backup"):
        answer = requests.post(f"{url}{ADMIN}/sites/nosuch.localhost/{job}", timeout=10)
        assert answer.status_code == 404
    assert requests.delete(f"{url}{ADMIN}/sites/nosuch.localhost", timeout=10).status_code == 404


def test_a_site_set_up_at_creation_takes_companies(url):
    made = requests.post(f"{url}{ADMIN}/sites", json={"site": "ready.localhost", "fresh": False},
                         timeout=10).json()  # fmt: skip
    assert count(url, "Account", headers=site_headers(made)) == 82


def test_new_keys_replace_the_old_ones(url):
    old = requests.post(f"{url}{ADMIN}/sites", json={"site": "t4.localhost"}, timeout=10).json()
    new = requests.post(f"{url}{ADMIN}/sites/t4.localhost/keys", timeout=10).json()

    probe = f"{url}/api/method/frappe.auth.get_logged_user"
    assert requests.get(probe, headers=site_headers(new), timeout=10).status_code == 200
    assert requests.get(probe, headers=site_headers(old), timeout=10).status_code == 401


def test_backup_names_its_files_and_drop_archives_the_site(url):
    made = requests.post(f"{url}{ADMIN}/sites", json={"site": "t5.localhost"}, timeout=10).json()

    backup = requests.post(f"{url}{ADMIN}/sites/t5.localhost/backup", timeout=10).json()
    database, config = backup["files"]
    assert database.endswith("-t5_localhost-database.sql.gz")
    assert config.endswith("-t5_localhost-site_config_backup.json")

    dropped = requests.delete(f"{url}{ADMIN}/sites/t5.localhost", timeout=10)
    assert dropped.json() == {"site": "t5.localhost", "archived": True}
    gone = requests.get(f"{url}{CUSTOMERS}", headers=site_headers(made), timeout=10)
    assert gone.status_code == 404
    assert "t5.localhost does not exist" in gone.text
    sites = requests.get(f"{url}{ADMIN}/sites", timeout=10).json()
    assert sites == {"sites": ["erp.localhost"], "archived": ["t5.localhost"]}


# -- the command line ------------------------------------------------------------------------


class CommandLine:
    """`python -m provisioner.simulator` on a free port, in a process of its own."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner.simulator", "--host", "127.0.0.1", "--port", "0",
             "--api-key", "cli-key", "--api-secret", "cli-secret", "--latency", "zero", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        banner = self.proc.stdout.readline()  # "ERPNext simulator on http://127.0.0.1:N (site …)"
        assert banner.startswith("ERPNext simulator on http://127.0.0.1:"), banner
        self.url = banner.split()[3]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def command_line() -> Iterator[Callable[..., CommandLine]]:
    started: list[CommandLine] = []

    def start(*extra: str) -> CommandLine:
        started.append(CommandLine(*extra))
        return started[-1]

    yield start
    for process in started:
        process.stop()


CLI_AUTH = {"Authorization": "token cli-key:cli-secret"}


def test_the_command_line_serves_with_faults_and_keeps_state_across_a_restart(
    command_line, tmp_path
):
    state = tmp_path / "simulator.json"
    fault = json.dumps({"kind": "error", "status": 503, "path": "ping$", "count": 1})

    first = command_line("--fault", fault, "--state-file", str(state))
    assert requests.get(f"{first.url}{PING}", timeout=10).status_code == 503  # the --fault
    assert requests.get(f"{first.url}{PING}", timeout=10).json() == {"message": "pong"}
    made = requests.post(f"{first.url}{CUSTOMERS}", json={"customer_name": "Kept Ltd"},
                         headers=CLI_AUTH, timeout=10)  # fmt: skip
    assert made.status_code == 200
    first.stop()

    second = command_line("--state-file", str(state))
    kept = requests.get(f"{second.url}{CUSTOMERS}/Kept Ltd", headers=CLI_AUTH, timeout=10)
    assert kept.status_code == 200
    assert requests.get(f"{second.url}{PING}", timeout=10).status_code == 200  # no fault now


def test_the_command_line_refuses_a_bad_fault():
    done = subprocess.run(
        [sys.executable, "-m", "provisioner.simulator", "--api-key", "k", "--api-secret", "s",
         "--latency", "zero", "--fault", '{"kind": "explode"}'],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--fault: kind:" in done.stderr


def test_admin_reset_clears_faults_and_can_make_the_site_fresh(url):
    requests.post(f"{url}{ADMIN}/faults", json={"kind": "latency", "seconds": 0.01}, timeout=10)
    new_customer(url, "Before Reset Ltd")

    answer = requests.post(f"{url}{ADMIN}/reset", json={"fresh_site": True}, timeout=10)

    assert answer.json() == {"status": "ok", "fresh_site": True}
    assert requests.get(f"{url}{ADMIN}/faults", timeout=10).json() == {"faults": []}
    assert requests.get(f"{url}{ADMIN}/calls", timeout=10).json() == {"calls": []}
    assert count(url, "Customer") == 0
    assert count(url, "Company") == 0  # before its wizard
    health = requests.get(f"{url}{ADMIN}/health", timeout=10).json()
    assert health == {"status": "ok", "sites": ["erp.localhost"], "default_site": "erp.localhost"}
