"""Chaos: worker kills, engine faults of every kind, a storm of steering calls.

Each scenario ends by checking that every run is final, none is stuck, and the engine holds
exactly one of each document per tenant (read through the engine's own REST API).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from provisioner.extensions import db
from provisioner.models import Run, RunStatus
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.orchestration import watchdog
from tests.chaos.conftest import (
    DEADLINE,
    TENANTS,
    assert_engine_exact,
    hold,
    settle_failures,
    wait_all_final,
)
from tests.helpers import events_of, new_tenant, start, sweeping, wait_run
from tests.integration.conftest import Api, make_user

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
# Seconds the engine is down in the outage scenario (`make chaos`: 120 and 600).
ENGINE_OUTAGES = [float(s) for s in os.environ.get("CHAOS_ENGINE_OUTAGES", "15").split(",")]
# Seconds of worker kills in the kill scenario at most (`make chaos`: 900), and the share of
# runs still in flight at which they stop sooner: the time from the last kill to the end is
# then the recovery of the runs the kills hit, not work that was still queued.
KILL_SECONDS = float(os.environ.get("CHAOS_KILL_SECONDS", "20"))
KILL_UNTIL_ACTIVE = float(os.environ.get("CHAOS_KILL_UNTIL_ACTIVE", "0.05"))
# Runs started at once in the backlog scenario (`make chaos`: 1,000).
BACKLOG = int(os.environ.get("CHAOS_BACKLOG", str(TENANTS * 5)))
FAULT_KINDS = [
    {"kind": "error", "status": 503, "exc_type": "SessionStopped"},
    {"kind": "error", "status": 429, "exc_type": "TooManyRequestsError",
     "headers": {"Retry-After": "1"}},
    {"kind": "error", "status": 500, "exc_type": "QueryDeadlockError"},
    {"kind": "timeout", "seconds": 3},
    {"kind": "drop"},
    {"kind": "commit_then_drop"},
    {"kind": "commit_then_timeout", "seconds": 3},
]  # fmt: skip


def test_worker_kills_lose_and_duplicate_nothing(app_ctx, worker, sim, engine, report):
    """SIGKILLs every ~2 s (every other one, the first included, of the whole worker, main
    process and pool, then a new one, as a supervisor would), beat's watchdog sweeping
    meanwhile, for KILL_SECONDS or until no more than KILL_UNTIL_ACTIVE of the runs are in
    flight; then no more kills: every run ends by itself, none makes anything twice."""
    worker.restart(concurrency=3)
    sim.add_fault(kind="latency", seconds=0.05, path="^/api/")  # a real engine is not instant
    rng = random.Random(7)
    tenants = [new_tenant() for _ in range(TENANTS)]
    run_ids = [start(t, include_demo_data=True) for t in tenants]
    kills = Counter()
    last_kill = [time.monotonic() - 1]
    kills_end = [time.monotonic() + KILL_SECONDS]
    in_flight_at_last_kill = [TENANTS]
    sweep = sweeping(app_ctx.config["CELERY"]["beat_schedule"]["watchdog"]["schedule"])

    def chaos() -> None:
        sweep()
        now = time.monotonic()
        if now - last_kill[0] < 2 or now > kills_end[0]:
            return
        in_flight = _in_flight(run_ids)
        if in_flight <= TENANTS * KILL_UNTIL_ACTIVE:
            kills_end[0] = now  # no more kills
            return
        last_kill[0], in_flight_at_last_kill[0] = now, in_flight
        children = worker.child_pids()
        if children and sum(kills.values()) % 2:  # every other kill, the first one not
            os.kill(rng.choice(children), signal.SIGKILL)  # one pool process
            kills["pool process"] += 1
        else:
            worker.kill_all()  # the whole worker, then a new one
            worker.start(concurrency=3)
            kills["worker"] += 1

    found = wait_all_final(run_ids, timeout=DEADLINE + KILL_SECONDS, tick=chaos)
    final_after_last_kill = time.monotonic() - last_kill[0]

    assert kills["worker"] > 0
    assert [r.status for r in found] == [RunStatus.COMPLETED] * TENANTS, kills
    assert_engine_exact(engine, [t.name for t in tenants])
    requeued = [e for r in found for e in events_of(r.id, kind="watchdog_requeued")]
    report(
        runs=Counter(r.status for r in found),
        kills=kills,
        kill_seconds=KILL_SECONDS,
        in_flight_at_last_kill=in_flight_at_last_kill[0],
        all_final_after_last_kill_s=round(final_after_last_kill, 1),
        watchdog_requeues=Counter(e.data["reason"] for e in requeued),
    )


def _in_flight(run_ids: list) -> int:
    db.session.expire_all()
    return db.session.scalar(
        select(func.count()).where(Run.id.in_(run_ids), Run.status.in_(ACTIVE_RUN_STATUSES))
    )


def test_a_backlog_does_not_starve_the_watchdog(app_ctx, worker, sim, engine, report):
    """BACKLOG runs started at once, the watchdog's beat entry sent every interval as beat
    sends it: every sweep runs, none waits behind the backlog of steps (the first one ran
    while most runs were still queued), and the runs complete."""
    worker.restart(concurrency=3)
    celery = app_ctx.extensions["celery"]
    entry = celery.conf.beat_schedule["watchdog"]
    interval = float(entry["schedule"])
    tenants = [new_tenant() for _ in range(BACKLOG)]
    run_ids = [start(t) for t in tenants]
    sent: list[float] = []  # when each sweep was sent
    done: list[tuple[float, int]] = []  # when each one had run (or skipped), runs in flight then
    seen = [_sweeps_processed()]

    def note_done() -> None:
        processed = _sweeps_processed()
        if processed > seen[0]:
            at, in_flight = time.monotonic(), _in_flight(run_ids)
            done.extend((at, in_flight) for _ in range(processed - seen[0]))
            seen[0] = processed

    def beat() -> None:
        if not sent or time.monotonic() - sent[-1] >= interval:
            celery.send_task(entry["task"], **entry.get("options", {}))
            sent.append(time.monotonic())
        note_done()

    found = wait_all_final(run_ids, timeout=DEADLINE + BACKLOG, tick=beat)
    ends = time.monotonic() + interval * 2  # the last ones sent may still be on their way
    while len(done) < len(sent) and time.monotonic() < ends:
        time.sleep(0.5)
        note_done()

    assert [r.status for r in found] == [RunStatus.COMPLETED] * BACKLOG
    assert len(done) == len(sent)  # none expired, none lost
    assert done[0][1] > BACKLOG / 2  # the first ran while most of the backlog still waited
    assert_engine_exact(engine, [t.name for t in tenants])
    waits = sorted(d - s for (d, _), s in zip(done, sent, strict=True))
    report(
        runs=Counter(r.status for r in found),
        interval_s=interval,
        sweeps_sent=len(sent),
        sweeps_done=len(done),
        sweep_wait_median_s=round(waits[len(waits) // 2], 1),
        sweep_wait_max_s=round(waits[-1], 1),
        runs_in_flight_at_each_sweep=[n for _, n in done],
    )


def _sweeps_processed() -> int:
    """Sweeps that ran or skipped so far (what each records in Redis: `watchdog.last_sweep`)."""
    return sum((watchdog.last_sweep() or {"sweeps": {}})["sweeps"].values())


def test_ten_percent_engine_faults_of_every_kind(app_ctx, worker, sim, engine, report):
    worker.restart(concurrency=3)
    sim.faults.rng.seed(11)
    for spec in FAULT_KINDS:
        sim.add_fault(**spec, rate=0.10 / len(FAULT_KINDS), path="^/api/")
    tenants = [new_tenant() for _ in range(TENANTS)]

    found = wait_all_final([start(t, include_demo_data=True) for t in tenants])
    calls = sim.calls()
    sim.clear_faults()
    found, continued = settle_failures(found)

    fired = Counter(c["fault"] for c in calls if c["fault"])
    assert len(fired) >= 4, fired  # most kinds really happened
    assert continued == []  # no run needed an operator: transient faults only delay
    assert [r.status for r in found] == [RunStatus.COMPLETED] * TENANTS
    assert_engine_exact(engine, [t.name for t in tenants])
    report(
        runs=Counter(r.status for r in found),
        engine_calls=len(calls),
        faults_fired=fired,
        continued_by_operator=Counter(continued),
        steps_waited=_waits(found),
    )


@pytest.mark.parametrize("outage", ENGINE_OUTAGES)
def test_engine_outage_under_load(app_ctx, worker, sim, engine, report, outage):
    """The engine answers 503 to every call for `outage` s while the runs are in flight (a
    restart or deploy behind its proxy), with the breaker's production settings: every run
    completes by itself, none needs an operator, none makes anything twice."""
    app_ctx.config.update(BREAKER_PROBE_INTERVAL=5.0, BREAKER_PROBE_MAX=30.0)
    worker.restart(concurrency=3)
    slow = {"kind": "latency", "seconds": 0.05, "path": "^/api/"}  # a real engine is not instant
    sim.add_fault(**slow)
    tenants = [new_tenant() for _ in range(TENANTS)]
    run_ids = [start(t, include_demo_data=True) for t in tenants]
    wait_run(run_ids[0], until=lambda r: r.step("create_company").status == "completed")

    sim.clear_faults()  # the first matching fault fires: the outage alone, then back to slow
    sim.add_fault(kind="error", status=503)
    hold(outage)
    sim.clear_faults()
    sim.add_fault(**slow)
    back = utcnow()
    found = wait_all_final(run_ids)
    found, continued = settle_failures(found)

    resumed = [_first_resumed_after(r.id, back) for r in found]
    lags = sorted(s for s in resumed if s is not None)
    assert lags  # the outage did keep runs waiting
    assert continued == []
    assert [r.status for r in found] == [RunStatus.COMPLETED] * TENANTS
    assert_engine_exact(engine, [t.name for t in tenants])
    report(
        outage_seconds=outage,
        runs=Counter(r.status for r in found),
        continued_by_operator=len(continued),
        runs_that_waited=len(lags),
        steps_waited=_waits(found),
        resumed_after_return_s={"max": lags[-1] if lags else None,
                                "median": lags[len(lags) // 2] if lags else None},
        failed_steps=sum(len(events_of(r.id, kind="step_failed")) for r in found),
    )  # fmt: skip


def _first_resumed_after(run_id, moment) -> float | None:
    """Seconds from the engine's return to the run's first resumed step (None: it did not
    wait then)."""
    resumed = [e for e in events_of(run_id, kind="step_resumed") if e.created_at >= moment]
    return round((resumed[0].created_at - moment).total_seconds(), 1) if resumed else None


def _waits(found) -> int:
    return sum(len(events_of(r.id, kind="step_waiting")) for r in found)


def test_storm_of_steering_calls_on_one_run(app_ctx, worker, sim, report):
    """Parallel retry / continue / cancel / start against one workspace: one active run at
    most, every accepted change in the run's log, and the workspace ends consistent."""
    sim.add_fault(kind="latency", seconds=1, method="POST", path="^/api/resource/Company$")
    tenant, admin = new_tenant(), make_user(admin=True)
    start(tenant)
    kinds = ["retry", "continue", "cancel", "start"] * 10
    gate = threading.Barrier(len(kinds))
    answers: list[tuple[str, int]] = []

    def call(kind: str) -> None:
        with app_ctx.app_context():
            api = Api(app_ctx.test_client(), admin)
            gate.wait()
            path = f"/api/v1/provisioning/tenants/{tenant.id}/{kind}"
            answers.append((kind, api.post(path, json={}).status_code))

    threads = [threading.Thread(target=call, args=(k,)) for k in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {code for _, code in answers} <= {200, 202, 409}, answers
    all_runs = db.session.query(Run).filter_by(tenant_id=tenant.id).all()
    assert sum(r.status in ACTIVE_RUN_STATUSES for r in all_runs) <= 1
    sim.clear_faults()
    found = wait_all_final([r.id for r in all_runs])
    accepted_cancels = sum(1 for k, c in answers if k == "cancel" and c == 200)
    cancelled_events = sum(len(events_of(r.id, kind="run_cancelled")) for r in found)
    assert cancelled_events == accepted_cancels  # every accepted cancel left its mark
    report(answers=Counter(f"{k} {c}" for k, c in answers), runs=len(found))
