"""The engine client against the simulator's real HTTP answers and injected faults (no mocks)."""

from __future__ import annotations

import socket

import pytest

from provisioner.engine import EngineClient, EngineCredentials
from provisioner.engine import errors as e
from provisioner.observability import context
from tests.conftest import SIM_KEY, SIM_SECRET

COMPANY = "^/api/resource/Company$"


def fault(sim, status: int, exc_type: str | None = None, message: str | None = None, **kw):
    spec = {"kind": "error", "status": status, "method": "POST", "path": COMPANY, "count": 1}
    spec.update({k: v for k, v in {"exc_type": exc_type, "message": message}.items() if v})
    sim.add_fault(**{**spec, **kw})


def insert_company(engine: EngineClient, name: str = "Classify Co"):
    return engine.insert(
        "Company",
        {"company_name": name, "abbr": "CLC", "default_currency": "KES", "country": "Kenya"},
    )


@pytest.mark.parametrize(
    ("status", "exc_type", "expected", "transient"),
    [
        (429, "TooManyRequestsError", e.RateLimited, True),
        (502, None, e.EngineBusy, True),
        (503, "SessionStopped", e.EngineBusy, True),
        (504, None, e.EngineBusy, True),
        (500, "QueryDeadlockError", e.EngineConflict, True),
        (500, "QueryTimeoutError", e.EngineConflict, True),
        (500, "ImportError", e.EngineRequestError, False),
        (403, "PermissionError", e.PermissionDenied, False),
        (417, "MandatoryError", e.ValidationFailed, False),
        (417, "LinkExistsError", e.ValidationFailed, False),
    ],
)
def test_answers_become_typed_errors(engine, sim, status, exc_type, expected, transient):
    fault(sim, status, exc_type, "it went wrong")
    with pytest.raises(expected) as caught:
        insert_company(engine)
    assert caught.value.transient is transient
    assert caught.value.status == status
    assert caught.value.request == "POST /api/resource/Company"


def test_rate_limit_carries_retry_after(engine, sim):
    fault(sim, 429, headers={"Retry-After": "7"})
    with pytest.raises(e.RateLimited) as caught:
        insert_company(engine)
    assert caught.value.retry_after == 7


def test_company_collision_is_a_conflict_to_retry(engine, sim):
    fault(sim, 417, "LinkValidationError", "Could not find Row #14: Default Account: Cash - XYZ")
    with pytest.raises(e.EngineConflict):
        insert_company(engine)


def test_real_validation_errors_carry_erpnext_message_in_plain_text(engine):
    insert_company(engine, "First Co")
    with pytest.raises(e.DuplicateEntry) as dup:
        insert_company(engine, "First Co")
    assert dup.value.message == "Company First Co already exists"  # <strong> stripped
    with pytest.raises(e.ValidationFailed) as abbr:
        insert_company(engine, "Second Co")  # same abbreviation
    assert "Abbreviation already used" in abbr.value.message
    assert "Traceback" not in str(abbr.value)


def test_missing_document_is_none_but_missing_site_is_an_error(engine, simulator_server):
    assert engine.get_doc("Company", "Nobody Ltd") is None
    elsewhere = EngineClient(
        EngineCredentials(simulator_server.url, SIM_KEY, SIM_SECRET, site="nosuch.example.com"),
        read_timeout=1,
    )
    with pytest.raises(e.NotFound) as caught:
        elsewhere.get_doc("Company", "Nobody Ltd")
    assert "does not exist" in caught.value.message


def test_wrong_credentials(simulator_server, sim):
    wrong = EngineClient(EngineCredentials(simulator_server.url, SIM_KEY, "nope"), read_timeout=1)
    with pytest.raises(e.AuthenticationFailed):
        wrong.logged_user()
    assert wrong.ping()  # ping needs no credentials


def test_unknown_doctype_is_a_permanent_500(engine):
    with pytest.raises(e.EngineRequestError) as caught:
        engine.get_list("No Such Doctype")
    assert caught.value.status == 500
    assert not caught.value.transient


def test_timeout_dropped_connection_and_refused_connection_are_transient(engine, sim):
    sim.add_fault(kind="timeout", seconds=3, path="get_logged_user", count=1)
    with pytest.raises(e.EngineTimeout):
        engine.logged_user()
    sim.add_fault(kind="drop", path="get_logged_user", count=1)
    with pytest.raises(e.EngineUnreachable):
        engine.logged_user()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = EngineClient(EngineCredentials(f"http://127.0.0.1:{port}", "k", "s"))
    with pytest.raises(e.EngineUnreachable, match="engine offline"):
        closed.ping()


def test_lists_counts_singles_and_correlation_header(engine, sim):
    with context.bound(correlation_id="corr-123"):
        assert engine.count("Customer Group") >= 5
    assert sim.calls()[-1]["correlation_id"] == "corr-123"
    groups = engine.get_list("Customer Group", fields=["name"], limit=0)
    assert {"All Customer Groups", "Individual", "Commercial"} <= {g["name"] for g in groups}
    assert engine.find("Customer Group", [["name", "=", "Individual"]]) == "Individual"
    assert "selling_price_list" in engine.get_single("Selling Settings")


def test_error_summary_never_holds_secrets_or_tracebacks(engine, sim):
    fault(sim, 417, "ValidationError", "<b>Bad</b> value")
    with pytest.raises(e.ValidationFailed) as caught:
        insert_company(engine)
    summary = caught.value.summary()
    assert summary == {
        "status": 417,
        "exc_type": "ValidationError",
        "message": "Bad value",
        "request": "POST /api/resource/Company",
    }
    assert SIM_SECRET not in str(summary)
