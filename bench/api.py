"""Part 1: API latency and throughput of `GET …/status` and `POST …/start` under gunicorn."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import BIN, ROOT, Proc, free_port, median, purge_queue
from bench.context import Bench
from bench.loadgen import Result, closed_loop, http_request, open_loop

HOST = "127.0.0.1"
STATUS_P99_GOAL, START_P99_GOAL, STATUS_RATE_GOAL = 10.0, 25.0, 1000.0
OPEN_RATE = 200.0
CLOSED_CEILING = 400  # start requests per second a closed loop is given tenants for


def gunicorn_configs() -> list[tuple[int, int]]:
    """(workers, threads) pairs from BENCH_GUNICORN, e.g. "2x8,4x4"; the first is the baseline."""
    raw = os.environ.get("BENCH_GUNICORN", "2x8,4x4")
    return [tuple(int(n) for n in item.split("x")) for item in raw.split(",")]  # type: ignore[misc]


def gunicorn_command(
    port: int, workers: int, threads: int, app: str = "wsgi:app", bin_dir: Path = BIN
) -> str:
    program = (bin_dir / "gunicorn").relative_to(ROOT)
    return (
        f"PORT={port} WEB_CONCURRENCY={workers} WEB_THREADS={threads} "
        f"{program} --config gunicorn.conf.py {app}"
    )


def start_gunicorn(
    workers: int,
    threads: int,
    *,
    app: str = "wsgi:app",
    env: dict[str, str] | None = None,
    ready: str = "/api/v1/openapi.json",
    cwd: Path = ROOT,
    bin_dir: Path = BIN,
    name: str | None = None,
) -> tuple[Proc, int]:
    """gunicorn with `gunicorn.conf.py` (of `cwd`) serving `app`, once `ready` answers."""
    port = free_port()
    env = {
        **(os.environ if env is None else env),
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
    }
    argv = [str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py", app]
    proc = Proc(name or f"gunicorn-{workers}x{threads}", argv, env, cwd=cwd)
    try:
        proc.wait_for_http(f"http://{HOST}:{port}{ready}")
    except RuntimeError:
        proc.stop()
        raise
    return proc, port


def run(bench: Bench, *, repeats: int, seconds: float) -> dict[str, Any]:
    """Every configuration `repeats` times; medians of each figure."""
    headers = {"Authorization": f"Bearer {bench.token}", "Accept": "application/json"}
    status_tenants = bench.tenants(50, "Status")
    bench.start_runs(status_tenants)
    purge_queue(bench.queue)
    status_paths = itertools.cycle(
        f"/api/v1/provisioning/tenants/{t}/status" for t in status_tenants
    )
    status_raw = [http_request("GET", p, HOST, headers) for p in itertools.islice(status_paths, 50)]

    def status_request(i: int) -> bytes:
        return status_raw[i % len(status_raw)]

    post_headers = {**headers, "Content-Type": "application/json"}

    def start_requests(count: int) -> Any:
        pool = [
            http_request(
                "POST", f"/api/v1/provisioning/tenants/{t}/start", HOST, post_headers, b"{}"
            )
            for t in bench.tenants(count, "Start")
        ]
        return lambda i: pool[i] if i < len(pool) else None

    results: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    commands: dict[str, str] = {}
    for repeat in range(repeats):
        for workers, threads in gunicorn_configs():
            label = f"{workers} workers x {threads} threads"
            proc, port = start_gunicorn(workers, threads)
            commands[label] = gunicorn_command(port, workers, threads)
            try:
                _suite(
                    bench,
                    results[label],
                    port,
                    label,
                    repeat,
                    seconds,
                    status_request,
                    start_requests,
                )
            finally:
                proc.stop()
    return {
        "runs": results,
        "medians": _medians(results),
        "commands": commands,
        "repeats": repeats,
        "seconds": seconds,
    }


def _suite(  # noqa: PLR0917
    bench: Bench,
    into: dict[str, list[dict[str, Any]]],
    port: int,
    label: str,
    repeat: int,
    seconds: float,
    status_request: Any,
    start_requests: Any,
) -> None:
    """The six measurements of one configuration."""
    for conns in (10, 50):
        job = closed_loop(HOST, port, status_request, connections=conns, seconds=seconds)
        into[f"status closed {conns}"].append(
            _measure(job, f"status closed {conns}", label, repeat)
        )
    job = open_loop(HOST, port, status_request, rate=OPEN_RATE, seconds=seconds)
    into["status open 200"].append(_measure(job, "status open 200", label, repeat))
    for conns in (10, 50):
        make = start_requests(int(CLOSED_CEILING * (seconds + 1)))
        job = closed_loop(HOST, port, make, connections=conns, seconds=seconds)
        into[f"start closed {conns}"].append(_measure(job, f"start closed {conns}", label, repeat))
        purge_queue(bench.queue)
    make = start_requests(int(OPEN_RATE * (seconds + 1)) + 5)
    job = open_loop(HOST, port, make, rate=OPEN_RATE, seconds=seconds)
    into["start open 200"].append(_measure(job, "start open 200", label, repeat))
    purge_queue(bench.queue)


def _measure(job: Any, name: str, label: str, repeat: int) -> dict[str, Any]:
    result: Result = asyncio.run(job)
    summary = result.summary()
    print(f"  api [{label}] #{repeat + 1} {name}: {json.dumps(summary)}", flush=True)
    return summary


def _non_2xx(run: dict[str, Any]) -> int:
    return sum(n for s, n in run["statuses"].items() if not 200 <= int(s) < 300)


def _medians(
    results: dict[str, dict[str, list[dict[str, Any]]]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Medians over the repeats; a repeat with non-2xx answers (e.g. 503 while another
    engineer's test had stopped Redis) is left out when a clean one exists."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for label, tests in results.items():
        out[label] = {}
        for name, runs in tests.items():
            clean = [r for r in runs if not _non_2xx(r)] or runs
            keys = ("req_per_s", "achieved_req_per_s", "p50_ms", "p95_ms", "p99_ms")
            figures: dict[str, float] = {
                k: round(median([r[k] for r in clean]), 2)
                for k in keys
                if all(k in r for r in clean)
            }
            figures |= {
                "non_2xx": sum(_non_2xx(r) for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "repeats_used": len(clean),
            }
            out[label][name] = figures
    return out


def verdicts(medians: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, str]]:
    """Pass or fail of each goal, per configuration."""
    out = {}
    for label, m in medians.items():
        sat = max(m["status closed 10"]["req_per_s"], m["status closed 50"]["req_per_s"])
        out[label] = {
            f"status ≥ {STATUS_RATE_GOAL:.0f} req/s at saturation": _verdict(
                sat >= STATUS_RATE_GOAL, f"{sat:.0f} req/s"
            ),
            f"status p99 ≤ {STATUS_P99_GOAL:g} ms at 200 req/s": _verdict(
                m["status open 200"]["p99_ms"] <= STATUS_P99_GOAL,
                f"{m['status open 200']['p99_ms']:.1f} ms",
            ),
            f"start p99 ≤ {START_P99_GOAL:g} ms at 200 req/s": _verdict(
                m["start open 200"]["p99_ms"] <= START_P99_GOAL,
                f"{m['start open 200']['p99_ms']:.1f} ms",
            ),
        }
    return out


def _verdict(ok: bool, value: str) -> str:
    return f"{'PASS' if ok else 'FAIL'} ({value})"
