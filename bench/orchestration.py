"""Part 2: orchestration overhead per step.

Three ways to do a FULL_POS run's work, interleaved in one session so machine noise hits
them alike: (a) a real FULL_POS run through the worker, against the simulator at zero
latency; (b) a bare Celery chain of nine no-op tasks on the same broker, queue and worker;
(c) the nine steps' engine calls made directly in this process (no Celery, no database).
Per-step overhead = (a - c) / 9; a bare hop = b / 9.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import nullcontext
from typing import Any

import redis
from celery import chain

from bench.common import SIM_KEY, SIM_SECRET, Proc, median, start_simulator, start_worker
from bench.context import Bench

STEPS = 9


def worker_command(queue: str) -> str:
    return (
        f".venv/bin/celery -A provisioner worker -Q {queue} --concurrency=1 --pool=prefork "
        "--include=bench.noop --loglevel=INFO --without-gossip --without-mingle"
    )


def run(bench: Bench, *, runs: int) -> dict[str, Any]:
    sim, sim_url = start_simulator("simulator-zero")
    os.environ["ERPNEXT_URL"] = sim_url
    worker: Proc | None = None
    try:
        worker = start_worker(
            "orchestration",
            bench.queue,
            concurrency=1,
            include="bench.noop",
            env={"ERPNEXT_URL": sim_url},
        )
        tenants = bench.tenants(runs + 1, "Orch")
        # Warm-up of each path (imports, connections, first company on the site).
        _full_run(bench, tenants[0])
        _bare_chain(bench)
        _direct_run(sim_url, f"Direct warm {uuid.uuid4().hex[:6]}")
        full: list[dict[str, Any]] = []
        bare: list[float] = []
        direct: list[dict[str, Any]] = []
        for i in range(runs):
            full.append(_full_run(bench, tenants[i + 1]))
            bare.append(_bare_chain(bench))
            direct.append(_direct_run(sim_url, f"Direct {i} {uuid.uuid4().hex[:6]}"))
            print(
                f"  orchestration #{i + 1}: full {full[-1]['wall_ms']:.0f} ms, "
                f"bare {bare[-1]:.1f} ms, "
                f"direct {direct[-1]['total_ms']:.0f} ms",
                flush=True,
            )
    finally:
        if worker:
            worker.stop()
        sim.stop()
    full_ms = median([r["wall_ms"] for r in full])
    body_ms = median([r["body_ms"] for r in full])
    bare_ms = median(bare)
    direct_ms = median([r["total_ms"] for r in direct])
    per_step = (full_ms - direct_ms) / STEPS
    hop = bare_ms / STEPS
    steps = {
        name: {
            "direct_ms": round(median([r["steps"][name] for r in direct]), 1),
            "in_worker_ms": round(median([r["steps"][name] for r in full]), 1),
        }
        for name in direct[0]["steps"]
    }
    return {
        "runs": runs,
        "full_run_ms": round(full_ms, 1),
        "full_run_step_bodies_ms": round(body_ms, 1),
        "bare_chain_ms": round(bare_ms, 1),
        "direct_ms": round(direct_ms, 1),
        "overhead_per_step_ms": round(per_step, 1),
        "framework_per_step_ms": round((full_ms - body_ms) / STEPS, 1),
        "bare_hop_ms": round(hop, 2),
        "ratio": round(per_step / hop, 1) if hop else None,
        "engine_calls_per_run": median([r["calls"] for r in direct]),
        "steps": steps,
        "samples": {"full": full, "bare": bare, "direct": direct},
        "worker_command": worker_command(bench.queue),
    }


def _full_run(bench: Bench, tenant_id: str) -> dict[str, Any]:
    """A FULL_POS run through the worker: queued → finished, from the database's timestamps."""
    from provisioner.extensions import db
    from provisioner.models import Run, RunStatus
    from provisioner.models.status import ACTIVE_RUN_STATUSES

    (run_id,) = bench.start_runs([tenant_id])
    deadline = time.monotonic() + 120
    with bench.app.app_context():
        while True:
            db.session.expire_all()
            run = db.session.get(Run, uuid.UUID(run_id))
            if run.status not in ACTIVE_RUN_STATUSES:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} still {run.status}")
            time.sleep(0.005)
        if run.status != RunStatus.COMPLETED:
            raise RuntimeError(
                f"run {run_id} ended {run.status}: {[(s.name, s.error) for s in run.steps]}"
            )
        wall = (run.finished_at - run.queued_at).total_seconds() * 1000
        steps = {s.name: float(s.duration_ms or 0) for s in run.steps}
        db.session.remove()
    return {"wall_ms": wall, "body_ms": sum(steps.values()), "steps": steps}


def _bare_chain(bench: Bench) -> float:
    """Nine no-op links on the default queue: publish → last link done, ms."""
    from bench.noop import noop

    conn = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    key = f"bench:noop:{uuid.uuid4().hex}"
    links = [noop.si(i) for i in range(STEPS - 1)] + [noop.si(STEPS - 1, key)]
    with bench.app.app_context():
        started = time.time()
        chain(*links).apply_async()
    popped = conn.blpop([key], timeout=60)
    if popped is None:
        raise RuntimeError("the bare chain did not finish in 60 s")
    conn.delete(key)
    return (float(popped[1]) - started) * 1000


def _direct_run(sim_url: str, name: str) -> dict[str, Any]:
    """The nine steps run in this process against the simulator, as the unit tests do."""
    from provisioner import catalog
    from provisioner.engine import EngineCredentials
    from provisioner.steps import BY_NAME
    from provisioner.steps.base import RunOptions, StepContext, TenantProfile

    country = catalog.countries()["KE"]
    tenant = TenantProfile(
        name=name,
        slug=name.lower().replace(" ", "-"),
        country_code="KE",
        country=country.name,
        currency=country.currency,
        timezone=country.timezone,
        wanted_chart=country.chart,
        shared_site=True,
    )
    engine = _CountingClient(EngineCredentials(sim_url, SIM_KEY, SIM_SECRET))
    metadata: dict[str, Any] = {}
    steps: dict[str, float] = {}
    started = time.perf_counter()
    for step_name, step in BY_NAME.items():
        t0 = time.perf_counter()
        if step.skip_reason(RunOptions()) is not None:  # the run skips it too
            steps[step_name] = 0.0
            continue
        ctx = StepContext(
            engine=engine,
            tenant=tenant,
            options=RunOptions(),
            template=catalog.template_for(None),
            metadata=dict(metadata),
            lock=lambda _name: nullcontext(),
            health_ttl=0,
        )
        metadata.update(step.run(ctx).metadata)
        steps[step_name] = (time.perf_counter() - t0) * 1000
    return {
        "total_ms": (time.perf_counter() - started) * 1000,
        "steps": steps,
        "calls": engine.calls,
    }


class _CountingClient:
    """An EngineClient that counts its HTTP calls."""

    def __new__(cls, creds: Any) -> Any:
        from provisioner.engine import EngineClient

        class Counting(EngineClient):
            calls = 0

            def _request(self, *args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return super()._request(*args, **kwargs)

        return Counting(creds)
