"""Small helpers the tests share: make tenants, start runs, wait, count engine documents."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import DBAPIError

from provisioner.engine import EngineClient
from provisioner.extensions import db
from provisioner.models import Run, RunEvent, StepStatus, Tenant
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.orchestration import outages, runs, watchdog
from provisioner.tenancy import create_tenant

WALK_IN = "Walk-In Customer"


def new_tenant(
    name: str | None = None, *, country: str = "KE", category: str | None = None
) -> Tenant:
    name = name or f"Shop {uuid.uuid4().hex[:8].upper()}"
    tenant = create_tenant(
        {
            "name": name,
            "country_code": country,
            "admin_email": f"owner-{uuid.uuid4().hex[:8]}@example.com",
            "admin_name": "Owner",
            "admin_password": "owner-password",
            "category": category,
        }
    )
    db.session.commit()
    return tenant


def start(tenant: Tenant, plan: str = "FULL_POS", steps: list[str] | None = None, **options: Any):
    run = runs.start(tenant, runs.StartRequest(plan=plan, steps=steps, options=options), "tests")
    return run.id


def finished_run(tenant):
    """A run that no worker changes any more (cancelled at once)."""
    run_id = start(tenant, "BASIC")
    runs.cancel(run_id, "tests")
    return run_id


def wait_run(
    run_id: Any, timeout: float = 60, *, until: Any = None, tick: Callable[[], None] | None = None
) -> Run:
    """Poll the database until the run is final (or `until(run)` holds), calling `tick()`
    between polls (e.g. `sweeping()`: the watchdog, as beat runs it)."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        run = db.session.get(Run, run_id)
        done = until(run) if until else run.status not in ACTIVE_RUN_STATUSES
        if done:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(
                f"run {run_id} still {run.status} after {timeout} s: {steps_of(run)}"
            )
        if any(s.status == StepStatus.WAITING for s in run.steps):
            outages.tick()  # what the engine probe's beat task would do about now
        if tick:
            tick()
        time.sleep(0.1)


def sweeping(every: float = 3.0) -> Callable[[], None]:
    """A tick for the wait loops: the watchdog's sweep now and then, as beat would."""
    return periodic(watchdog.sweep, every)


def periodic(work: Callable[[], Any], seconds: float) -> Callable[[], None]:
    """A tick that does `work` at most once per `seconds` when called in a loop."""
    last = [0.0]

    def tick() -> None:
        if time.monotonic() - last[0] < seconds:
            return
        last[0] = time.monotonic()
        try:
            work()
        except DBAPIError:  # the database is restarting: the next tick does it
            db.session.rollback()

    return tick


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Poll `condition()` until it gives something true, and return that."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        time.sleep(0.1)
    return found


def steps_of(run: Run) -> dict[str, str]:
    return {s.name: s.status for s in run.steps}


def events_of(run_id: Any, kind: str | None = None, step: str | None = None) -> list[RunEvent]:
    query = db.select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.id)
    if kind:
        query = query.where(RunEvent.kind == kind)
    if step:
        query = query.where(RunEvent.step == step)
    return list(db.session.execute(query).scalars())


def engine_documents(engine: EngineClient, company: str) -> dict[str, int]:
    """How many of each provisioned document the engine holds for a company (its own REST API)."""
    by_company = [["company", "=", company]]
    profile = f"{company} POS"
    return {
        "Company": engine.count("Company", [["name", "=", company]]),
        "Account": engine.count("Account", by_company),
        "Main Store": engine.count(
            "Warehouse", [*by_company, ["warehouse_name", "=", "Main Store"]]
        ),
        "POS Store": engine.count("Warehouse", [*by_company, ["warehouse_name", "=", "POS Store"]]),
        "Walk-In Customer": engine.count("Customer", [["customer_name", "=", WALK_IN]]),
        "POS Profile": engine.count("POS Profile", [["name", "=", profile]]),
        "Open POS session": engine.count(
            "POS Opening Entry",
            [["pos_profile", "=", profile], ["status", "=", "Open"], ["docstatus", "=", 1]],
        ),
    }


EXACTLY_ONE = {
    "Company": 1,
    "Main Store": 1,
    "POS Store": 1,
    "Walk-In Customer": 1,
    "POS Profile": 1,
    "Open POS session": 1,
}


def assert_exactly_one_of_each(engine: EngineClient, company: str) -> dict[str, int]:
    counts = engine_documents(engine, company)
    assert counts["Account"] > 50, counts
    assert {k: v for k, v in counts.items() if k != "Account"} == EXACTLY_ONE, counts
    return counts


def metric(client: Any, name: str, **labels: str) -> float:
    """One sample of the API's /metrics (0 when it is not there)."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0
