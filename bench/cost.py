"""Part 4: cost — SQL statements per status read and per step, worker RSS, Redis per queued run."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from sqlalchemy import event

from bench.common import (
    SIM_KEY,
    SIM_SECRET,
    median,
    purge_queue,
    rss_mib,
    start_simulator,
    start_worker,
)
from bench.context import Bench


def run(bench: Bench, *, queued: int) -> dict[str, Any]:
    return {
        "status_read": _status_queries(bench),
        "steps": _step_queries(bench, runs=3),
        "redis": _redis_per_run(bench, queued),
        "throttle": _throttle_overhead(bench),
    }


def _throttle_overhead(bench: Bench, calls: int = 200, rounds: int = 5) -> dict[str, Any]:
    """µs per engine call with the per-site cap off and on (alternating rounds, medians)."""
    from provisioner.engine import EngineClient, EngineCredentials

    sim, url = start_simulator("simulator-throttle")
    engine = EngineClient(EngineCredentials(url, SIM_KEY, SIM_SECRET))
    timings: dict[int, list[float]] = {0: [], 4: []}
    try:
        with bench.app.app_context():
            engine.ping()
            for _ in range(rounds):
                for cap, samples in timings.items():
                    bench.app.config["ENGINE_MAX_CONCURRENCY"] = cap
                    began = time.perf_counter()
                    for _ in range(calls):
                        engine.ping()
                    samples.append((time.perf_counter() - began) / calls * 1e6)
    finally:
        bench.app.config["ENGINE_MAX_CONCURRENCY"] = 0
        sim.stop()
    return {
        "calls": calls * rounds,
        "off_us": round(median(timings[0])),
        "on_us": round(median(timings[4])),
    }


def _status_queries(bench: Bench, reads: int = 20) -> dict[str, Any]:
    """Statements per `GET …/status` and per `POST …/start`, through the Flask test client."""
    from provisioner.extensions import db

    tenants = bench.tenants(reads + 1, "Cost")
    bench.start_runs(tenants[:1])
    purge_queue(bench.queue)
    client = bench.app.test_client()
    headers = {"Authorization": f"Bearer {bench.token}"}
    counts: list[int] = []
    with bench.app.app_context():
        engines = list(db.engines.values())  # the session's and the status read's

    def count(*_: Any) -> None:
        counts[-1] += 1

    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        status: list[int] = []
        for _ in range(reads):
            counts.append(0)
            client.get(f"/api/v1/provisioning/tenants/{tenants[0]}/status", headers=headers)
            status.append(counts[-1])
        start: list[int] = []
        for tenant in tenants[1:]:
            counts.append(0)
            client.post(f"/api/v1/provisioning/tenants/{tenant}/start", headers=headers, json={})
            start.append(counts[-1])
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
        purge_queue(bench.queue)
    return {"status_queries": median(status), "start_queries": median(start), "reads": reads}


def _step_queries(bench: Bench, runs: int) -> dict[str, Any]:
    """Statements per step task, counted inside a worker by bench/probe.py; worker RSS."""
    from bench import orchestration

    sim, sim_url = start_simulator("simulator-cost")
    conn = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    key = f"bench:queries:{bench.queue}"
    conn.delete(key)
    worker = start_worker(
        "cost", bench.queue, concurrency=2, include="bench.probe", env={"ERPNEXT_URL": sim_url}
    )
    try:
        idle_rss = {
            "main": rss_mib(worker.pid),
            "children": [rss_mib(p) for p in worker.children()],
        }
        for tenant in bench.tenants(runs, "Queries"):
            orchestration._full_run(bench, tenant)
        time.sleep(0.5)
        busy_rss = {
            "main": rss_mib(worker.pid),
            "children": [rss_mib(p) for p in worker.children()],
        }
    finally:
        worker.stop()
        sim.stop()
    raw = {k.decode(): int(v) for k, v in conn.hgetall(key).items()}
    conn.delete(key)
    per_step = {
        name.removeprefix("provisioner.steps."): round(total / raw[f"{name}:n"], 1)
        for name, total in raw.items()
        if not name.endswith(":n") and raw.get(f"{name}:n")
    }
    return {
        "runs": runs,
        "queries_per_step": per_step,
        "queries_per_run": round(sum(per_step.values()), 1),
        "rss_idle_mib": _round(idle_rss),
        "rss_after_runs_mib": _round(busy_rss),
        "worker_command": f".venv/bin/celery -A provisioner worker -Q {bench.queue} "
        "--concurrency=2 --pool=prefork --include=bench.probe --loglevel=INFO "
        "--without-gossip --without-mingle",
    }


def _round(rss: dict[str, Any]) -> dict[str, Any]:
    return {"main": round(rss["main"], 1), "children": [round(c, 1) for c in rss["children"]]}


def _redis_per_run(bench: Bench, count: int) -> dict[str, Any]:
    """Redis `used_memory` before and after `count` runs are queued (no worker consuming)."""
    conn = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    tenants = bench.tenants(count, "Queued")
    purge_queue(bench.queue)
    before = int(conn.info("memory")["used_memory"])
    bench.start_runs(tenants)
    after = int(conn.info("memory")["used_memory"])
    messages = int(conn.llen(bench.queue))
    list_bytes = int(conn.memory_usage(bench.queue) or 0)
    purge_queue(bench.queue)
    return {
        "runs": count,
        "messages": messages,
        "used_memory_delta_bytes": after - before,
        "bytes_per_run": round((after - before) / count),
        "queue_list_bytes_per_run": round(list_bytes / count),
    }
