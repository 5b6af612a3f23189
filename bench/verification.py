"""Part 6: verification — engine calls and time per verification, and the scheduled trickle.

(a) Workspaces provisioned FULL_POS (demo items on) through a worker against the simulator
with the latency profile of a warm real site (`--latency real`: a GET ~13 ms), then verified
one at a time through the same worker: engine reads per verification (the task's count, and
the simulator's call log by correlation id) and time from asked to checked.

(b) The schedule at 10,000 workspaces: that many tenants (each with a completed run) written
into the scratch database, 9,000 on the shared site and 1,000 on ten sites of their own.
The tables are analyzed (as autovacuum would), then the beat tick (`verification_schedule.tick`)
is timed and its SQL statements counted in two states: a fleet never verified (everything
overdue: the tick starts the cap of each site) and the steady state (each verified once in
the last interval, evenly). The verifications a tick
asks for are published to the bench queue (no worker) and then marked done, as instant
workers would. `GET /metrics` is timed with the 10,000 latest verifications. And the
schedule's choice is replayed tick by tick over two days (`pick`, no database) for 10,000
workspaces made at once, to show the load per tick and per site.
"""

from __future__ import annotations

import heapq
import random
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import delete, event, insert, text, update

from bench.common import median, purge_queue, start_simulator, start_worker
from bench.context import RUN_ID, Bench

FLEET = 10_000
OWN_SITES, PER_OWN_SITE = 10, 100
TICK_S = 60.0
TICKS = 5  # timed ticks per state


def run(bench: Bench, *, tenants: int, rounds: int) -> dict[str, Any]:
    return {
        "per_verification": _per_verification(bench, tenants=tenants, rounds=rounds),
        "schedule": _schedule(bench),
        "trickle": _trickle(bench),
    }


# -- (a) one verification -------------------------------------------------------------------


def _per_verification(bench: Bench, *, tenants: int, rounds: int) -> dict[str, Any]:
    sim, sim_url = start_simulator("simulator-verify", profile="real")
    worker = start_worker("verify", bench.queue, concurrency=1, env={"ERPNEXT_URL": sim_url})
    try:
        ids = bench.tenants(tenants, "Verify")
        began = time.monotonic()
        _provision(bench, ids)
        provisioned_s = time.monotonic() - began
        samples = [_verify_once(bench, tenant, sim_url) for _ in range(rounds) for tenant in ids]
    finally:
        worker.stop()
        sim.stop()
    reads = [s["reads"] for s in samples]
    return {
        "tenants": tenants,
        "verifications": len(samples),
        "provisioned_s": round(provisioned_s, 1),
        "statuses": dict(Counter(s["status"] for s in samples)),
        "checks": median([s["checks"] for s in samples]),
        "reads_median": median(reads),
        "reads_max": max(reads),
        "reads_in_call_log_max": max(s["logged"] for s in samples),
        "only_gets": all(s["only_gets"] for s in samples),
        "asked_to_checked_ms": round(median([s["asked_ms"] for s in samples]), 1),
        "started_to_checked_ms": round(median([s["work_ms"] for s in samples]), 1),
        "started_to_checked_max_ms": round(max(s["work_ms"] for s in samples), 1),
        "engine_ms": round(median([s["engine_ms"] for s in samples]), 1),
        "worker_command": f".venv/bin/celery -A provisioner worker -Q {bench.queue} "
        "--concurrency=1 --pool=prefork",
    }


def _provision(bench: Bench, tenant_ids: list[str]) -> None:
    from provisioner.extensions import db
    from provisioner.models import Run, RunStatus, Tenant
    from provisioner.models.status import ACTIVE_RUN_STATUSES
    from provisioner.orchestration import runs

    with bench.app.app_context():
        started = [
            runs.start(
                db.session.get(Tenant, uuid.UUID(tenant)),
                runs.StartRequest(options={"include_demo_data": True}),
                "bench",
            ).id
            for tenant in tenant_ids
        ]
        deadline = time.monotonic() + 600
        while True:
            db.session.expire_all()
            statuses = [db.session.get(Run, run_id).status for run_id in started]
            if not any(s in ACTIVE_RUN_STATUSES for s in statuses):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"runs still active: {statuses}")
            time.sleep(0.2)
        if any(s != RunStatus.COMPLETED for s in statuses):
            raise RuntimeError(f"runs ended {statuses}")
        db.session.remove()


def _verify_once(bench: Bench, tenant_id: str, sim_url: str) -> dict[str, Any]:
    from provisioner.extensions import db
    from provisioner.models import Tenant, Verification
    from provisioner.models.verification import ACTIVE_VERIFICATION_STATUSES
    from provisioner.orchestration import verifications

    with bench.app.app_context():
        tenant = db.session.get(Tenant, uuid.UUID(tenant_id))
        verification_id = verifications.request(tenant, "bench").verification.id
        deadline = time.monotonic() + 120
        while True:
            db.session.expire_all()
            done = db.session.get(Verification, verification_id)
            if done.status not in ACTIVE_VERIFICATION_STATUSES:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"verification {verification_id} still {done.status}")
            time.sleep(0.005)
        calls = requests.get(f"{sim_url}/__simulator__/calls", timeout=10).json()["calls"]
        mine = [c for c in calls if c.get("correlation_id") == done.task_id]
        sample = {
            "status": str(done.status),
            "checks": len(done.checks or []),
            "reads": done.engine_reads,
            "logged": len(mine),
            "only_gets": {c["method"] for c in mine} == {"GET"},
            "engine_ms": sum(c.get("duration_ms") or 0 for c in mine),
            "asked_ms": (done.checked_at - done.created_at).total_seconds() * 1000,
            "work_ms": (done.checked_at - done.started_at).total_seconds() * 1000,
        }
        db.session.remove()
    return sample


# -- (b) the schedule at 10,000 workspaces --------------------------------------------------


def _schedule(bench: Bench) -> dict[str, Any]:
    from provisioner.extensions import db

    tenant_ids = _fleet(bench)
    statements: list[int] = []
    with bench.app.app_context():
        engine = db.engine

    def count(*_: Any) -> None:
        statements[-1] += 1

    now = datetime.now(UTC)
    event.listen(engine, "before_cursor_execute", count)
    try:
        never = _ticks(bench, statements, now)
        _verified_over_the_last_interval(bench, tenant_ids, now)
        steady = _ticks(bench, statements, now)
        scrape = _scrape(bench, statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
        purge_queue(bench.queue)
        _forget_fleet(bench, tenant_ids)
    cfg = bench.app.config
    return {
        "tenants": FLEET,
        "sites": {"shared": FLEET - OWN_SITES * PER_OWN_SITE, "own": [PER_OWN_SITE] * OWN_SITES},
        "interval_s": cfg["VERIFY_INTERVAL"],
        "per_site": cfg["VERIFY_PER_SITE"],
        "never_verified": never,
        "steady": steady,
        "metrics": scrape,
    }


def _fleet(bench: Bench) -> list[uuid.UUID]:
    """10,000 provisioned tenants, each with a completed run of one completed step, written
    in bulk (the ORM path would take minutes and measure nothing of interest here)."""
    from provisioner.extensions import db
    from provisioner.models import Run, RunStep, Tenant

    now = datetime.now(UTC)
    created = now - timedelta(days=30)  # a fleet that existed before verification did
    tenants, runs, steps = [], [], []
    for i in range(FLEET):
        tenant_id, run_id = uuid.uuid4(), uuid.uuid4()
        own = i < OWN_SITES * PER_OWN_SITE
        tenants.append({
            "id": tenant_id, "name": f"Fleet {RUN_ID} {i}", "slug": f"fleet-{RUN_ID}-{i}",
            "country_code": "KE", "currency": "KES", "category": None, "status": "active",
            "provisioning_status": "PROVISIONED", "live_version": 1,
            "engine_url": f"http://site-{i % OWN_SITES}.example:8000" if own else None,
            "engine_site": f"site-{i % OWN_SITES}.example" if own else None,
            "engine_api_key_enc": "not-a-real-key" if own else None,
            "created_at": created, "updated_at": created,
        })  # fmt: skip
        runs.append({
            "id": run_id, "tenant_id": tenant_id, "plan": "FULL_POS", "options": {},
            "status": "COMPLETED", "progress": 100, "meta": {"company": f"Fleet {i}"},
            "version": 1, "created_at": created, "updated_at": created, "finished_at": created,
        })  # fmt: skip
        steps.append({
            "run_id": run_id, "name": "create_company", "position": 1, "status": "completed",
            "critical": True, "optional": False, "planned": True, "attempts": 1,
            "manual_attempts": 0,
        })  # fmt: skip
    with bench.app.app_context():
        for model, rows in ((Tenant, tenants), (Run, runs), (RunStep, steps)):
            for chunk in range(0, len(rows), 2000):
                db.session.execute(insert(model), rows[chunk : chunk + 2000])
        db.session.commit()
        _analyze()
    return [row["id"] for row in tenants]


def _analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live database (without them
    a bulk-filled table looks empty to the planner)."""
    from provisioner.extensions import db

    db.session.execute(text("ANALYZE"))
    db.session.commit()


def _ticks(bench: Bench, statements: list[int], now: datetime) -> dict[str, Any]:
    """TICKS beat ticks a minute apart from `now` (the clock they are given), each followed
    by marking what it asked for done, as instant workers would."""
    from provisioner.extensions import db
    from provisioner.models import Verification
    from provisioner.orchestration import verification_schedule

    timings, started, due, counts, choosing = [], [], [], [], []
    interval = float(bench.app.config["VERIFY_INTERVAL"])
    with bench.app.app_context():
        for n in range(1, TICKS + 1):
            statements.append(0)
            began = time.perf_counter()
            at = now + timedelta(seconds=n * TICK_S)
            report = verification_schedule.tick(at)
            timings.append((time.perf_counter() - began) * 1000)
            counts.append(statements[-1])
            began = time.perf_counter()  # the choice alone, again: what is due, what is busy
            verification_schedule.due(at, interval)
            verification_schedule.busy_per_site()
            choosing.append((time.perf_counter() - began) * 1000)
            db.session.rollback()
            started.append(report.started)
            due.append(report.due)
            db.session.execute(
                update(Verification)
                .where(Verification.status == "pending")
                .values(status="ok", checked_at=datetime.now(UTC), checks=[], tally={})
            )
            db.session.commit()
            purge_queue(bench.queue)
        db.session.remove()
    return {
        "tick_ms": round(median(timings), 1),
        "tick_ms_max": round(max(timings), 1),
        "statements": median(counts),
        "choice_ms": round(median(choosing), 1),
        "started_per_tick": median(started),
        "due_at_first_tick": due[0],
    }


def _verified_over_the_last_interval(
    bench: Bench, tenant_ids: list[uuid.UUID], now: datetime
) -> None:
    """Every tenant verified once in the interval before `now`, evenly (the steady state)."""
    from provisioner.extensions import db
    from provisioner.models import Verification

    interval = float(bench.app.config["VERIFY_INTERVAL"])
    tally = {"create_company": {"ok": 1}}
    with bench.app.app_context():
        db.session.execute(delete(Verification))
        rows = [
            {"id": uuid.uuid4(), "tenant_id": tenant, "status": "ok", "latest": True,
             "requested_by": "schedule", "task_id": str(uuid.uuid4()), "checks": [],
             "tally": tally, "engine_reads": 1,
             "created_at": (asked := now - timedelta(seconds=interval * (i + 0.5) / FLEET)),
             "checked_at": asked, "started_at": asked, "updated_at": asked}
            for i, tenant in enumerate(tenant_ids)
        ]  # fmt: skip
        for chunk in range(0, len(rows), 2000):
            db.session.execute(insert(Verification), rows[chunk : chunk + 2000])
        db.session.commit()
        _analyze()
        db.session.remove()


def _scrape(bench: Bench, statements: list[int], rounds: int = 5) -> dict[str, Any]:
    client = bench.app.test_client()
    timings, counts = [], []
    for _ in range(rounds):
        statements.append(0)
        began = time.perf_counter()
        assert client.get("/metrics").status_code == 200
        timings.append((time.perf_counter() - began) * 1000)
        counts.append(statements[-1])
    return {"scrape_ms": round(median(timings), 1), "statements": median(counts)}


def _forget_fleet(bench: Bench, tenant_ids: list[uuid.UUID]) -> None:
    from provisioner.extensions import db
    from provisioner.models import Tenant

    with bench.app.app_context():
        for chunk in range(0, len(tenant_ids), 2000):
            batch = tenant_ids[chunk : chunk + 2000]
            db.session.execute(delete(Tenant).where(Tenant.id.in_(batch)))
        db.session.commit()
        db.session.remove()


# -- the trickle, replayed -----------------------------------------------------------------


def _trickle(bench: Bench, days: int = 2) -> dict[str, Any]:
    """10,000 workspaces made at once, every verification done within its tick: how many one
    tick starts, per site, over `days` intervals (the schedule's own functions, no database)."""
    from provisioner.orchestration.verification_schedule import Candidate, due_at, pick

    interval = float(bench.app.config["VERIFY_INTERVAL"])
    cap = int(bench.app.config["VERIFY_PER_SITE"])
    made = datetime(2026, 1, 1, 9, 17, tzinfo=UTC)
    start = made.timestamp()
    rng = random.Random(14)
    fleet = [(uuid.UUID(int=rng.getrandbits(128)), _site_of(i)) for i in range(FLEET)]
    queue = [(due_at(tenant, None, made, interval), n) for n, (tenant, _) in enumerate(fleet)]
    heapq.heapify(queue)
    per_tick: list[Counter[str]] = []
    for tick in range(int(days * interval / TICK_S)):
        now = start + tick * TICK_S
        ready = []
        while queue and queue[0][0] <= now:
            ready.append(heapq.heappop(queue))
        chosen = pick(
            [Candidate(fleet[n][0], fleet[n][1], due) for due, n in ready], now, cap, busy={}
        )
        picked = {c.tenant_id for c in chosen}
        for due, n in ready:
            heapq.heappush(queue, (now + interval, n) if fleet[n][0] in picked else (due, n))
        per_tick.append(Counter(c.site for c in chosen))
    shared = [t["shared"] for t in per_tick]
    own = [t["own-0"] for t in per_tick]
    total = [sum(t.values()) for t in per_tick]
    return {
        "ticks": len(per_tick),
        "verifications": sum(total),
        "per_tick_mean": round(statistics.mean(total), 2),
        "per_tick_max": max(total),
        "shared_per_tick_mean": round(statistics.mean(shared), 2),
        "shared_per_tick_max": max(shared),
        "own_site_per_tick_max": max(own),
        "idle_ticks_shared": sum(1 for n in shared if n == 0),
    }


def _site_of(i: int) -> str:
    return f"own-{i % OWN_SITES}" if i < OWN_SITES * PER_OWN_SITE else "shared"
