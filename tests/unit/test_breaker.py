"""The engine sites' circuit breaker (provisioner/engine/breaker.py) against real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from provisioner.engine.breaker import (
    KEY_PREFIX,
    Breaker,
    BreakerStatus,
    counts_as_outage,
)
from provisioner.engine.errors import (
    EngineBusy,
    EngineConflict,
    EngineTimeout,
    EngineUnreachable,
    RateLimited,
    ValidationFailed,
)
from provisioner.engine.throttle import SlotTimeout
from tests import services

SETTINGS = {
    "BREAKER_FAILURES": 3,
    "BREAKER_WINDOW": 60,
    "BREAKER_PROBE_INTERVAL": 2,
    "BREAKER_PROBE_MAX": 10,
    "BREAKER_HALF_OPEN_TRIALS": 2,
    "BREAKER_HALF_OPEN_TIMEOUT": 30,
}


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    services.check_redis()
    conn = redis.Redis.from_url(f"{services.REDIS_URL}/0")
    yield conn
    for key in conn.scan_iter(f"{KEY_PREFIX}test-*"):
        conn.delete(key)
    conn.close()


@pytest.fixture
def breaker(client) -> Breaker:
    return Breaker(client, SETTINGS)


@pytest.fixture
def site() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_failures_in_a_row_open_the_site_and_a_success_closes_it(breaker, site):
    assert breaker.state(site).status == BreakerStatus.CLOSED
    assert breaker.failed(site, "503").status == BreakerStatus.CLOSED
    assert breaker.failed(site, "503").status == BreakerStatus.CLOSED
    breaker.succeeded(site)  # not in a row: counting starts again
    for _ in range(2):
        assert breaker.failed(site, "503").status == BreakerStatus.CLOSED
    before = time.time()
    opened = breaker.failed(site, "502 Bad Gateway")
    assert opened.status == BreakerStatus.OPEN
    assert opened.reason == "502 Bad Gateway"
    assert before <= opened.opened_at <= time.time()
    assert opened.next_probe_at == pytest.approx(opened.opened_at + 2, abs=0.5)
    assert not breaker.state(site).available
    assert [s.site for s in breaker.sites() if s.site == site] == [site]

    assert breaker.succeeded(site) is True  # it was open
    assert breaker.state(site).status == BreakerStatus.CLOSED
    assert breaker.state(site).available
    assert breaker.succeeded(site) is False


def test_failed_probes_back_off_up_to_the_maximum(breaker, site):
    for _ in range(3):
        breaker.failed(site, "refused")
    first = breaker.state(site)
    delays = []
    for _ in range(4):
        state = breaker.probe_failed(site, "still refused")
        delays.append(round(state.next_probe_at - time.time()))
    assert delays == [4, 8, 10, 10]  # 2 s doubling, capped at 10 s
    assert state.opened_at == first.opened_at  # open since the first time
    assert (state.probes, state.reason) == (4, "still refused")


def test_half_open_lets_steps_try_and_a_failure_opens_it_again(breaker, site):
    for _ in range(3):
        breaker.failed(site, "503")
    state = breaker.half_open(site)
    assert state.status == BreakerStatus.HALF_OPEN
    assert state.available
    assert breaker.state(site).available

    again = breaker.failed(site, "503 again")  # one trial failed: open at once
    assert again.status == BreakerStatus.OPEN
    assert again.reason == "503 again"
    assert not breaker.state(site).available


def test_a_half_open_site_whose_trials_say_nothing_is_probed_again(breaker, site):
    for _ in range(3):
        breaker.failed(site, "503")
    state = breaker.half_open(site)
    assert not state.probe_due(time.time())
    assert state.probe_due(time.time() + 31)


def test_only_outage_like_failures_count():
    assert counts_as_outage(EngineUnreachable("refused"))
    assert counts_as_outage(EngineTimeout("slow"))
    assert counts_as_outage(EngineBusy("503", status=503))
    assert not counts_as_outage(SlotTimeout("our own cap"))
    assert not counts_as_outage(RateLimited("429", status=429))
    assert not counts_as_outage(EngineConflict("deadlock"))
    assert not counts_as_outage(ValidationFailed("bad", status=417))
