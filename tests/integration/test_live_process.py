"""The live process for real: a subprocess, a private Redis, PostgreSQL, hundreds of streams.

The private `redis-server` (its own free port, no persistence) is the one this module
restarts; the machine's Redis is never touched. The `provisioning_runs` table is a scratch
one with the columns the live process reads (the real migration belongs to the API side).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import psycopg
import pytest
import redis
from psycopg.types.json import Jsonb

from bench.common import free_port
from bench.sse import SseStream, open_many, open_stream, wait_until
from provisioner.live.publisher import publish_status
from tests import services
from tests.live import LiveProcess

pytestmark = pytest.mark.integration
SECRET = "live-test-secret-key-that-is-long-enough"
V1 = "/api/v1/provisioning/tenants"
ROOT = Path(__file__).resolve().parents[2]


class PrivateRedis:
    def __init__(self, tmp: Path) -> None:
        self.port, self.tmp, self.proc = free_port(), tmp, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(self.tmp)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        services.missing("redis-server", "not installed")
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runs_db() -> Iterator[str]:
    services.check_postgres()
    with services.scratch_database() as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE provisioning_runs (id uuid PRIMARY KEY, tenant_id uuid NOT NULL,"
            " created_at timestamptz NOT NULL, version integer NOT NULL, status_doc jsonb)"
        )
        conn.execute("CREATE INDEX ON provisioning_runs (tenant_id, created_at)")
        yield url


@pytest.fixture(scope="module")
def live(private_redis, runs_db, tmp_path_factory) -> Iterator[int]:
    process = LiveProcess(
        tmp_path_factory.mktemp("live") / "live.log",
        REDIS_URL=private_redis.url, DATABASE_URL=runs_db, SECRET_KEY=SECRET,
        LIVE_MAX_STREAMS_PER_USER="3", LIVE_SEND_TIMEOUT="1", LIVE_SEND_BUFFER="1048576",
        LIVE_REDIS_BACKOFF_MAX="0.5", LIVE_REQUEST_TIMEOUT="1",
    )  # fmt: skip
    yield process.port
    process.stop()


def ticket(tenant_id: object, user: str = "u1", **changes: object) -> str:
    claims = {"sub": user, "aud": "provisioner:events", "tenant": str(tenant_id),
              "exp": datetime.now(UTC) + timedelta(seconds=60), **changes}  # fmt: skip
    return jwt.encode(claims, SECRET, algorithm="HS256")


def add_run(db_url: str, tenant_id: uuid.UUID, version: int, doc: dict) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO provisioning_runs VALUES (%s, %s, now(), %s, %s)",
            (uuid.uuid4(), tenant_id, version, Jsonb(doc)),
        )


def doc(tenant_id: object, status: str, pad: int = 0) -> dict:
    return {"tenant_id": str(tenant_id), "status": status, "pad": "x" * pad}


def statuses(stream: SseStream) -> list[str]:
    return [e.data for e in stream.events if e.event == "status"]


def run(coro):
    """Run a scenario's event loop in a thread of its own: the browser tests' Playwright keeps
    one running in the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_one_published_frame_reaches_300_streams_and_never_goes_back(live, private_redis, runs_db):
    tenant = uuid.uuid4()
    add_run(runs_db, tenant, 1, doc(tenant, "PENDING"))
    client = redis.Redis.from_url(private_redis.url)

    async def scenario() -> None:
        paths = [f"{V1}/{tenant}/events?ticket={ticket(tenant, f'viewer-{i}')}" for i in range(300)]
        streams = await open_many(live, paths)
        await wait_until(lambda: all(s.events for s in streams), 20, "the first frames")
        first = streams[0].events[-1]
        assert (first.event, first.id) == ("status", "1")  # read from PostgreSQL
        assert '"status":"PENDING"' in first.data
        assert all(s.retry_ms == 2000 for s in streams)

        assert publish_status(client, tenant, uuid.uuid4(), 3, doc(tenant, "IN_PROGRESS"))
        assert not publish_status(client, tenant, uuid.uuid4(), 2, doc(tenant, "STALE"))
        await wait_until(lambda: all(s.last_id == "3" for s in streams), 20, "version 3 everywhere")
        assert all(len(statuses(s)) == 2 for s in streams)
        assert not any("STALE" in d for s in streams for d in statuses(s))
        for s in streams:
            s.close()

    run(scenario())


def test_last_event_id_of_the_current_version_gets_no_duplicate(live, private_redis):
    tenant = uuid.uuid4()
    publish_status(redis.Redis.from_url(private_redis.url), tenant, None, 5, doc(tenant, "X"))

    async def scenario() -> None:
        path = f"{V1}/{tenant}/events?ticket={ticket(tenant)}"
        same = await open_stream(live, path, headers={"Last-Event-ID": "5"})
        older = await open_stream(live, path.replace("/v1", ""), headers={"Last-Event-ID": "4"})
        await wait_until(lambda: same.comments >= 1 and older.events, 10, "first frames")
        assert statuses(same) == []
        assert [(e.event, e.id) for e in older.events] == [("status", "5")]
        same.close()
        older.close()

    run(scenario())


def test_a_workspace_without_runs_is_idle(live):
    tenant = uuid.uuid4()

    async def scenario() -> None:
        stream = await open_stream(live, f"{V1}/{tenant}/events?ticket={ticket(tenant)}")
        await wait_until(lambda: stream.events, 10, "the idle frame")
        idle = stream.events[0]
        assert (idle.event, idle.id) == ("idle", "0")
        assert idle.data == f'{{"tenant_id":"{tenant}","message":"not provisioned yet"}}'
        stream.close()

    run(scenario())


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("{t}/events", {}, 401, "unauthorized"),
        ("{t}/events", {"Authorization": "Bearer abc"}, 401, "ticket_required"),
        ("{t}/events?ticket=forged", {}, 401, "unauthorized"),
        ("{t}/events?ticket={other}", {}, 401, "unauthorized"),
        ("{t}/events?ticket={expired}", {}, 401, "unauthorized"),
        ("{t}/events?ticket={wrong_aud}", {}, 401, "unauthorized"),
        ("not-a-uuid/events?ticket={valid}", {}, 404, "not_found"),
    ],
)
def test_tickets_are_checked_without_a_database(live, path, headers, status, code):
    tenant = uuid.uuid4()
    tickets = {
        "t": tenant,
        "valid": ticket(tenant),
        "other": ticket(uuid.uuid4()),
        "expired": ticket(tenant, exp=datetime.now(UTC) - timedelta(seconds=5)),
        "wrong_aud": ticket(tenant, aud="provisioner:api"),
    }

    async def scenario() -> SseStream:
        stream = await open_stream(live, f"{V1}/" + path.format(**tickets), headers=headers)
        await asyncio.wait_for(stream.closed, 10)  # type: ignore[arg-type]
        return stream

    answer = run(scenario())
    assert answer.status == status
    import json

    assert json.loads(answer.body)["error"]["code"] == code


def test_the_per_user_cap_answers_429(live):
    tenant = uuid.uuid4()

    async def scenario() -> None:
        path = f"{V1}/{tenant}/events?ticket={ticket(tenant, 'capped')}"
        held = [await open_stream(live, path) for _ in range(3)]
        await wait_until(lambda: all(s.status == 200 for s in held), 10, "three streams")
        refused = await open_stream(live, path)
        await asyncio.wait_for(refused.closed, 10)  # type: ignore[arg-type]
        assert refused.status == 429
        assert b'"too_many_streams"' in refused.body
        held[0].close()
        await asyncio.sleep(0)  # the server notices the close; then one more is allowed
        again: list[SseStream] = []

        async def retry() -> bool:
            again.append(await open_stream(live, path))
            await wait_until(lambda: again[-1].status is not None, 10, "an answer")
            return again[-1].status == 200

        deadline = time.monotonic() + 10
        while not await retry():
            assert time.monotonic() < deadline
        for s in held + again:
            s.close()

    run(scenario())


def test_a_slow_client_is_dropped_and_the_others_are_served(live, private_redis):
    tenant = uuid.uuid4()
    client = redis.Redis.from_url(private_redis.url)
    publish_status(client, tenant, None, 1, doc(tenant, "A"))

    async def scenario() -> None:
        path = f"{V1}/{tenant}/events?ticket="
        slow = await open_stream(live, path + ticket(tenant, "slow"), receive_buffer=4096)
        fast = await open_stream(live, path + ticket(tenant, "fast"))
        await wait_until(lambda: bool(slow.events and fast.events), 10, "first frames")
        assert slow.transport is not None
        slow.transport.pause_reading()  # reads nothing more: ~19 MB outgrow every buffer
        last = 600
        for version in range(2, last + 1):
            publish_status(client, tenant, None, version, doc(tenant, "B", pad=32_000))
            await asyncio.sleep(0.002)  # a pace the reading client keeps up with
        await wait_until(lambda: fast.last_id == str(last), 20, "the fast one up to date")
        slow.transport.resume_reading()  # now it sees what the server did: it hung up
        await asyncio.wait_for(slow.closed, 20)  # type: ignore[arg-type]
        assert slow.last_id != str(last)
        assert fast.is_open
        fast.close()

    run(scenario())


def test_after_a_redis_restart_every_stream_gets_the_state_again(live, private_redis, runs_db):
    tenant = uuid.uuid4()
    add_run(runs_db, tenant, 7, doc(tenant, "COMPLETED"))

    async def scenario() -> None:
        paths = [f"{V1}/{tenant}/events?ticket={ticket(tenant, f'r-{i}')}" for i in range(100)]
        streams = await open_many(live, paths)
        await wait_until(lambda: all(s.last_id == "7" for s in streams), 20, "first frames")
        private_redis.stop()
        private_redis.start()  # empty: no saved state
        await wait_until(lambda: all(len(statuses(s)) == 2 for s in streams), 30, "a resync")
        assert all(s.is_open and s.last_id == "7" for s in streams)
        publish_status(redis.Redis.from_url(private_redis.url), tenant, None, 8, doc(tenant, "N"))
        await wait_until(lambda: all(s.last_id == "8" for s in streams), 20, "after the restart")
        for s in streams:
            s.close()

    run(scenario())


def exchange(port: int, request: bytes, *, wait: float = 5) -> bytes:
    """Send raw bytes, read until the server closes (or `wait` s pass): its whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(request)
        answer = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def test_a_request_head_over_16_kib_is_refused_with_431(live):
    flood = "".join(f"X-Pad-{i}: {'y' * 100}\r\n" for i in range(200))
    answer = exchange(live, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{flood}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert b'"code": "request_too_large"' in answer


def test_a_client_that_never_finishes_its_request_is_cut_off(live):
    started = time.monotonic()
    answer = exchange(live, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", wait=15)  # no blank line
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert time.monotonic() - started < 15  # LIVE_REQUEST_TIMEOUT (1 s here), not the socket's


@pytest.mark.parametrize(
    ("request_line", "status"),
    [(b"POST /healthz HTTP/1.1", b"405"), (b"GARBAGE\x00\x01", b"400")],
)
def test_only_well_formed_gets_are_served(live, request_line, status):
    answer = exchange(live, request_line + b"\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]


def test_a_page_of_another_origin_may_read_the_stream_and_say_what_it_has(live, private_redis):
    tenant = uuid.uuid4()
    publish_status(redis.Redis.from_url(private_redis.url), tenant, None, 7, doc(tenant, "X"))

    async def scenario() -> None:
        path = f"{V1}/{tenant}/events?ticket={ticket(tenant)}"
        fresh = await open_stream(live, path)
        known = await open_stream(live, f"{path}&last_event_id=7")
        await wait_until(lambda: fresh.events and known.comments >= 1, 10, "first frames")
        assert fresh.headers["access-control-allow-origin"] == "*"
        assert statuses(known) == []  # the version it named is the current one
        fresh.close()
        known.close()

    run(scenario())
