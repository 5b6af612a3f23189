"""The hotspot: `POST …/start` and `GET …/status` in-process under pyinstrument."""

from __future__ import annotations

import time
from typing import Any

from bench.common import LOG_DIR, purge_queue
from bench.context import Bench


def run(bench: Bench, *, requests: int = 200) -> dict[str, Any]:
    """Per-request wall and CPU time of each route; full profiles go to artifacts/bench/."""
    from pyinstrument import Profiler

    status_tenants = bench.tenants(10, "Prof")
    bench.start_runs(status_tenants)
    start_tenants = bench.tenants(requests + 1, "ProfStart")
    purge_queue(bench.queue)
    client = bench.app.test_client()
    headers = {"Authorization": f"Bearer {bench.token}"}
    client.get(f"/api/v1/provisioning/tenants/{status_tenants[0]}/status", headers=headers)
    client.post(f"/api/v1/provisioning/tenants/{start_tenants[0]}/start", headers=headers, json={})
    out: dict[str, Any] = {"requests": requests}
    jobs = {
        "status": lambda i: client.get(
            f"/api/v1/provisioning/tenants/{status_tenants[i % 10]}/status", headers=headers
        ),
        "start": lambda i: client.post(
            f"/api/v1/provisioning/tenants/{start_tenants[i + 1]}/start", headers=headers, json={}
        ),
    }
    for name, job in jobs.items():
        profiler = Profiler(interval=0.0005)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        profiler.start()
        for i in range(requests):
            job(i)
        profiler.stop()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        path = LOG_DIR / f"profile-{name}.txt"
        path.write_text(profiler.output_text(unicode=False, color=False))
        out[name] = {
            "wall_ms_per_request": round(wall / requests * 1000, 2),
            "cpu_ms_per_request": round(cpu / requests * 1000, 2),
            "profile": str(path),
        }
        print(f"  profile {name}: {out[name]}", flush=True)
    purge_queue(bench.queue)
    return out
