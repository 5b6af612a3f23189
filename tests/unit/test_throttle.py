"""The per-engine-site concurrency cap (provisioner/engine/throttle.py) against real Redis."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from provisioner.engine import EngineClient, EngineCredentials
from provisioner.engine.errors import EngineUnreachable, TransientEngineError
from provisioner.engine.throttle import KEY_PREFIX, Semaphore, SlotTimeout, slot
from tests import services

URL = f"{services.REDIS_URL}/0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    services.check_redis()
    conn = redis.Redis.from_url(URL)
    yield conn
    for key in conn.scan_iter(f"{KEY_PREFIX}test-*"):
        conn.delete(key)
    conn.close()


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_no_more_holders_than_the_limit(client, name):
    sem = Semaphore(client, name, 2)
    first, second = sem.try_acquire(), sem.try_acquire()
    assert first
    assert second
    assert first != second
    assert sem.try_acquire() is None
    sem.release(first)
    assert sem.try_acquire() is not None
    assert sem.holders() == 2


def test_waiting_ends_with_a_transient_error_when_no_slot_frees(client, name):
    sem = Semaphore(client, name, 1)
    assert sem.try_acquire()
    with pytest.raises(SlotTimeout) as caught, sem.hold(0.05):
        pass
    assert isinstance(caught.value, TransientEngineError)  # the step retries


def test_a_slot_is_released_when_the_block_raises(client, name):
    sem = Semaphore(client, name, 1)
    seen: list[int] = []

    def fail() -> None:
        with sem.hold(1):
            seen.append(sem.holders())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert seen == [1]
    assert sem.holders() == 0
    assert sem.try_acquire() is not None


def test_threads_never_exceed_the_cap(client, name):
    limit, inside, peak = 3, [0], [0]
    guard = threading.Lock()

    def work() -> None:
        sem = Semaphore(client, name, limit)
        for _ in range(5):
            with sem.hold(30):
                with guard:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.005)
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= peak[0] <= limit
    assert Semaphore(client, name, limit).holders() == 0


def test_the_slot_of_a_killed_process_comes_back_when_its_lease_expires(client, name):
    code = (
        "import os, redis\n"
        "from provisioner.engine.throttle import Semaphore\n"
        f"sem = Semaphore(redis.Redis.from_url({URL!r}), {name!r}, 1, lease=0.3)\n"
        "assert sem.try_acquire()\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9  # killed while holding its slot, never released it
    sem = Semaphore(client, name, 1)
    assert client.pttl(sem.key) > 0  # the key itself expires with its last lease
    assert sem.acquire(timeout=10) is not None


def test_an_unused_key_expires(client, name):
    sem = Semaphore(client, name, 1, lease=0.1)
    assert sem.try_acquire()
    deadline = time.monotonic() + 10
    while client.exists(sem.key) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not client.exists(sem.key)


def _app(limit: int, url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(ENGINE_MAX_CONCURRENCY=limit, ENGINE_THROTTLE_REDIS_URL=url,
                      ENGINE_SLOT_WAIT=0.05)  # fmt: skip
    return app


def test_slot_follows_the_config(client, name):
    with _app(1, URL).app_context():
        with slot(name, lease=5):
            assert Semaphore(client, name, 1).holders() == 1
            with pytest.raises(SlotTimeout), slot(name, lease=5):
                pass
        assert Semaphore(client, name, 1).holders() == 0
    with _app(0, URL).app_context(), slot(name, lease=5):
        assert not client.exists(KEY_PREFIX + name)  # cap off: nothing counted


def test_slot_lets_calls_through_when_redis_is_unreachable(name, caplog):
    ran = []
    with _app(1, "redis://127.0.0.1:1/0").app_context(), slot(name, lease=5):
        ran.append(True)
    assert ran == [True]
    assert "engine throttle unavailable, calling without a slot" in caplog.text


def test_the_engine_client_releases_its_slot_on_errors(client):
    creds = EngineCredentials("http://127.0.0.1:1", "k", "s")  # nothing listens there
    sem = Semaphore(client, creds.site_key, 1)
    with _app(1, URL).app_context():
        engine = EngineClient(creds, connect_timeout=0.5, read_timeout=0.5)
        with pytest.raises(EngineUnreachable):
            engine.ping()
        assert sem.holders() == 0
    client.delete(sem.key)
