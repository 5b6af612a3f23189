"""Part: the live process under many streams (goals of issue 12, never asserted in tests).

One live process (`python -m provisioner.live`) on a private `redis-server` (so that it can
be restarted without touching the machine's Redis), the streams held by `bench/sse.py` in
this driver process (which shares the 2 cores). Figures: RSS at 1,000 and 5,000 streams,
the time from a real committed change of a run to its frame on 99 % / 100 % of 5,000
streams, `GET …/status` p99 on the API at 200 req/s (open loop) while the streams are open,
and the time until every one of 1,000 streams has the state again after a Redis restart;
beside them the same streams on a gevent candidate (`bench/gevent_sse.py`), and the shipped
code's API with 200 streams on its own web process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import redis
from sqlalchemy import select

from bench import status as status_bench
from bench.api import HOST, start_gunicorn
from bench.common import (
    BIN,
    LOG_DIR,
    ROOT,
    Proc,
    free_port,
    pct,
    private_venv,
    purge_queue,
    rss_mib,
)
from bench.context import Bench
from bench.loadgen import http_request, open_loop
from bench.sse import SseStream, open_many, wait_until
from provisioner.extensions import db
from provisioner.models import Run
from provisioner.orchestration import runs

V1 = "/api/v1/provisioning/tenants"
GEVENT = "gevent==26.9.0"  # the candidate's, in a venv of its own (never the product's)
SHIPPED_STREAMS = 200  # open pages on the shipped code's web process (issue 12 measured 200)
THREADS = 16  # the shipped web process's request threads (2 workers x 8)


def _private_redis(port: int) -> subprocess.Popen[bytes]:
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", str(LOG_DIR)]  # fmt: skip
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("private redis-server did not start")


def _ticket(tenant: str, user: str) -> str:
    claims = {"sub": user, "aud": "provisioner:events", "tenant": tenant,
              "exp": datetime.now(UTC) + timedelta(minutes=10)}  # fmt: skip
    return jwt.encode(claims, os.environ["SECRET_KEY"], algorithm="HS256")


def run(bench: Bench, *, streams: int = 5000, restart_streams: int = 1000) -> dict[str, Any]:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    shipped = asyncio.run(shipped_with_streams(SHIPPED_STREAMS))
    redis_port, live_port = free_port(), free_port()
    private = [_private_redis(redis_port)]  # the one running now is the last
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "LIVE_PORT": str(live_port), "LIVE_HOST": "127.0.0.1",
           "LIVE_MAX_STREAMS_PER_USER": str(streams)}  # fmt: skip
    live = Proc("live", [str(BIN / "python"), "-m", "provisioner.live"], env)
    try:
        live.wait_for_http(f"http://127.0.0.1:{live_port}/healthz")
        out = asyncio.run(_measure(bench, live, live_port, redis_port, private,
                                   streams, restart_streams))  # fmt: skip
        live.stop()
        try:
            gevent = asyncio.run(_gevent_candidate(bench, redis_port, streams))
        except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as exc:
            gevent = {"error": str(exc)[-500:]}  # the candidate's failure, reported as such
        return {**out, "shipped": shipped, "gevent": gevent}
    finally:
        live.stop()
        private[-1].terminate()
        private[-1].wait()


async def _hold_and_fan_out(
    server: Proc, port: int, bench: Bench, redis_url: str, n: int
) -> tuple[dict[str, Any], list[SseStream]]:
    """1,000 then `n` streams of one real workspace on `server`: its memory; five fan-outs,
    each of a real change of the workspace's run that this process commits (cancel, then
    continue, by turns; its status document ~3 KB), timed from the moment the change began
    (its transaction and commit included) to each stream's frame: the median one's p99 and
    max, and the server's CPU for it; then its CPU over 30 s idle."""
    out: dict[str, Any] = {"streams": n, "rss_idle_mib": _rss(server)}
    held: list[SseStream] = []
    with _committing_to(bench, redis_url) as (tenant, change):
        for size in (1000, n):
            paths = [f"{V1}/{tenant}/events?ticket={_ticket(tenant, 'bench')}"] * (size - len(held))
            held += await open_many(port, paths, concurrency=500)
            await wait_until(lambda h=held: all(s.events for s in h), 120, f"{size} streams")
            await asyncio.sleep(1)
            out[f"rss_{size}_mib"] = _rss(server)
        out["open"] = sum(s.is_open for s in held)
        fanouts = []
        for i in range(5):
            cpu, began = server.cpu_seconds(), time.perf_counter()
            version = str(change(i))
            await wait_until(lambda v=version: all(s.last_id == v for s in held), 60, "fan-out")
            lat = [(s.events[-1].received - began) * 1000 for s in held]
            fanouts.append((pct(lat, 99), max(lat), (server.cpu_seconds() - cpu) * 1000))
            await asyncio.sleep(0.5)
    out["fanout_p99_ms"] = round(sorted(f[0] for f in fanouts)[2], 1)
    out["fanout_max_ms"] = round(sorted(f[1] for f in fanouts)[2], 1)
    out["fanout_cpu_ms"] = round(sorted(f[2] for f in fanouts)[2], 1)
    cpu = server.cpu_seconds()
    await asyncio.sleep(30)
    out["idle_cpu_s_per_30s"] = round(server.cpu_seconds() - cpu, 2)
    return out, held


@contextmanager
def _committing_to(bench: Bench, redis_url: str) -> Iterator[tuple[str, Callable[[int], int]]]:
    """A new workspace with a run, and `change(i)`: cancel the run (even i) or continue it
    (odd i), committed by this process with its live updates sent to `redis_url` (as the
    API's and the workers' are), answering the version the change left."""
    app = bench.app
    before = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = redis_url
    try:
        tenant = bench.tenants(1, "Live fan-out")[0]
        run_id = uuid.UUID(bench.start_runs([tenant])[0])

        def change(i: int) -> int:
            with app.app_context():
                if i % 2:
                    runs.resume(run_id, "bench", kind="continue")
                else:
                    runs.cancel(run_id, "bench")
                version = db.session.execute(select(Run.version).where(Run.id == run_id))
                return int(version.scalar_one())

        yield tenant, change
    finally:
        app.config["REDIS_URL"] = before
        purge_queue(bench.queue)  # the chains the changes published: nothing runs them


def _rss(server: Proc) -> float:
    """Resident memory of the server's processes (a gunicorn's master and worker), MiB."""
    return round(sum(rss_mib(pid) for pid in (server.pid, *server.children())), 1)


async def _measure(  # noqa: PLR0917
    bench: Bench,
    live: Proc,
    port: int,
    redis_port: int,
    private: list[subprocess.Popen[bytes]],
    n: int,
    n_restart: int,
) -> dict[str, Any]:
    out, held = await _hold_and_fan_out(live, port, bench, f"redis://127.0.0.1:{redis_port}/0", n)
    out["status_open_200"] = await _status_while_open(bench)
    for s in held[n_restart:]:
        s.close()
    kept = held[:n_restart]
    seen = [len(s.events) for s in kept]  # each has the last change's frame (the fan-outs)
    private[-1].terminate()
    private[-1].wait()
    began = time.perf_counter()
    private.append(_private_redis(redis_port))
    again = lambda: all(len(s.events) > k for s, k in zip(kept, seen, strict=True))  # noqa: E731
    await wait_until(again, 60, "the state again")
    out["restart_streams"] = n_restart
    out["restart_all_state_again_s"] = round(time.perf_counter() - began, 2)
    out["restart_open"] = sum(s.is_open for s in kept)
    for s in kept:
        s.close()
    print(f"  live: {out}", flush=True)
    return out


async def _gevent_candidate(bench: Bench, redis_port: int, n: int) -> dict[str, Any]:
    """The same streams and fan-outs on `bench/gevent_sse.py` (gunicorn, one gevent worker)."""
    python = private_venv(LOG_DIR / "candidates" / "gevent", "-r", str(ROOT / "requirements.txt"),
                          GEVENT)  # fmt: skip
    port = free_port()
    argv = [str(python.parent / "gunicorn"), "-k", "gevent", "-w", "1", "--worker-connections",
            str(n + 100), "-b", f"127.0.0.1:{port}", "bench.gevent_sse:app"]  # fmt: skip
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    server = Proc("gevent-candidate", argv, env)
    try:
        server.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        out, held = await _hold_and_fan_out(server, port, bench, env["REDIS_URL"], n)
        for s in held:
            s.close()
    finally:
        server.stop()
    command = " ".join(argv[1:])
    out["command"] = f"{GEVENT}: gunicorn {command}"
    print(f"  live (gevent candidate): {out}", flush=True)
    return out


async def _status_while_open(bench: Bench) -> dict[str, Any]:
    """The API's status route at 200 req/s (open loop) on the shipped 2x8 gunicorn."""
    tenant = bench.tenants(1, "Live")[0]
    bench.start_runs([tenant])
    purge_queue(bench.queue)
    proc, port = start_gunicorn(2, 8)
    try:
        return await _open_loop_elsewhere(port, f"{V1}/{tenant}/status", bench.token)
    finally:
        proc.stop()


async def shipped_with_streams(n: int) -> dict[str, Any]:
    """The shipped code (`bench/status.py`'s baseline) with `n` streams open on its own web
    process, as its page held them: the same open loop of status reads beside them."""
    with status_bench.shipped() as server:
        tenant = server.paths[0].split("/")[-2]
        user = jwt.decode(server.token, options={"verify_signature": False})["sub"]
        paths = [f"{V1}/{tenant}/events?ticket={_ticket(tenant, user)}"] * n
        held = await open_many(server.port, paths, concurrency=100)
        with contextlib.suppress(AssertionError):  # measured whatever it holds by then
            await wait_until(lambda: sum(s.status == 200 for s in held) >= THREADS, 20, "held")
        try:
            figures = await _open_loop_elsewhere(server.port, server.paths[0], server.token)
        finally:
            for s in held:
                s.close()
        return {"streams": n, "streams_answered": sum(s.status == 200 for s in held),
                "command": server.command, **figures}  # fmt: skip


async def _open_loop_elsewhere(port: int, path: str, token: str) -> dict[str, Any]:
    """200 req/s for 4 s from a process of its own: the driver's event loop is busy holding
    the streams, and a client that shares it would measure itself."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    raw = http_request("GET", path, HOST, headers)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, _open_loop, port, raw)


def _open_loop(port: int, raw: bytes) -> dict[str, Any]:
    result = asyncio.run(open_loop(HOST, port, lambda _i: raw, rate=200.0, seconds=4, timeout=10))
    return result.summary()
