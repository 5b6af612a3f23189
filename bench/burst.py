"""Part 3: a burst of runs against the simulator at 50 ms per engine call.

Every tenant is started at once (published as fast as this process can); the time is from
the first publish to the last run's end. Then the same with a per-site concurrency cap
(ENGINE_MAX_CONCURRENCY) over a pool wide enough that the cap, not the pool, is the limit.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import purge_queue, rss_mib, start_simulator, start_worker
from bench.context import Bench

LATENCY_S = 0.05
POOLS = (
    ("prefork", 1),
    ("prefork", 2),
    ("prefork", 4),
    ("threads", 1),
    ("threads", 2),
    ("threads", 4),
)
CAPS = (1, 2, 4)
CAP_POOL = ("threads", 8)
FULL_POOL = ("prefork", 4)  # the widest pool of the table, for the full-size burst


def worker_command(queue: str, pool: str, concurrency: int, cap: int = 0) -> str:
    prefix = f"ENGINE_MAX_CONCURRENCY={cap} " if cap else ""
    return (
        f"{prefix}.venv/bin/celery -A provisioner worker -Q {queue} --concurrency={concurrency} "
        f"--pool={pool} --loglevel=INFO --without-gossip --without-mingle"
    )


@contextmanager
def _simulator(name: str) -> Iterator[str]:
    """A simulator at 50 ms per call, which the workers started meanwhile talk to."""
    sim, sim_url = start_simulator(name, latency_s=LATENCY_S)
    os.environ["ERPNEXT_URL"] = sim_url
    try:
        yield sim_url
    finally:
        sim.stop()


def run(bench: Bench, *, tenants: int) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with _simulator("simulator-50ms") as sim_url:
        for pool, concurrency in POOLS:
            results.append(_burst(bench, sim_url, pool, concurrency, tenants, cap=0))
        for cap in CAPS:
            results.append(_burst(bench, sim_url, *CAP_POOL, max(tenants // 2, 4), cap=cap))
    return {
        "tenants": tenants,
        "cap_tenants": max(tenants // 2, 4),
        "latency_ms": LATENCY_S * 1000,
        "results": results,
    }


def run_full(bench: Bench, *, tenants: int) -> dict[str, Any]:
    """The burst at the issue's size (1,000 tenants) on one pool: `--only burst_full`."""
    with _simulator("simulator-50ms-full") as sim_url:
        return {"tenants": tenants, "results": [_burst(bench, sim_url, *FULL_POOL, tenants, cap=0)]}


def _burst(
    bench: Bench, sim_url: str, pool: str, concurrency: int, count: int, *, cap: int
) -> dict[str, Any]:
    queue = bench.queue
    purge_queue(queue)
    env = {"ERPNEXT_URL": sim_url, "ENGINE_MAX_CONCURRENCY": str(cap)}
    tenant_ids = bench.tenants(count, f"Burst {pool} {concurrency} {cap}")
    worker = start_worker(
        f"burst-{pool}-{concurrency}-{cap}", queue, concurrency=concurrency, pool=pool, env=env
    )
    try:
        began = time.time()
        run_ids = bench.start_runs(tenant_ids)
        published_s = time.time() - began
        statuses, finished = _wait_all(bench, run_ids, timeout=max(600.0, count * 10.0))
        elapsed = finished - began
        rss = {
            "main": round(rss_mib(worker.pid), 1),
            "children": [round(rss_mib(p), 1) for p in worker.children()],
        }
    finally:
        worker.stop()
        purge_queue(queue)
    out = {
        "pool": pool,
        "concurrency": concurrency,
        "cap": cap,
        "tenants": count,
        "seconds": round(elapsed, 1),
        "runs_per_min": round(count / elapsed * 60, 1),
        "publish_s": round(published_s, 2),
        "statuses": statuses,
        "rss_mib": rss,
        "command": worker_command(queue, pool, concurrency, cap),
    }
    print(
        f"  burst {pool} x{concurrency} cap {cap}: {count} runs in {elapsed:.1f} s "
        f"({out['runs_per_min']} runs/min) {statuses}",
        flush=True,
    )
    return out


def _wait_all(bench: Bench, run_ids: list[str], *, timeout: float) -> tuple[dict[str, int], float]:
    """Wait until every run is final; their statuses and the last finish (epoch seconds)."""
    from sqlalchemy import func, select

    from provisioner.extensions import db
    from provisioner.models import Run
    from provisioner.models.status import ACTIVE_RUN_STATUSES

    ids = [uuid.UUID(r) for r in run_ids]
    deadline = time.monotonic() + timeout
    with bench.app.app_context():
        while True:
            active = db.session.scalar(
                select(func.count())
                .select_from(Run)
                .where(Run.id.in_(ids), Run.status.in_(ACTIVE_RUN_STATUSES))
            )
            db.session.rollback()
            if not active or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        rows = db.session.execute(
            select(Run.status, func.count()).where(Run.id.in_(ids)).group_by(Run.status)
        )
        statuses = {str(status): int(n) for status, n in rows}
        last = db.session.scalar(select(func.max(Run.finished_at)).where(Run.id.in_(ids)))
        db.session.remove()
    return statuses, (last.timestamp() if last else time.time())
