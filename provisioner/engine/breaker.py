"""A circuit breaker per engine site, its state in Redis and shared by every worker.

An ERPNext that restarts or is being deployed answers 502/503, refuses connections or
times out for minutes. Retrying every step of every run against it burns their retry
budgets and fails them all; instead, after BREAKER_FAILURES such failures in a row on one
site the site is `open` (unavailable): its steps are parked, not tried. A probe (the beat
task `provisioner.engine.probe`) asks the site whether it answers again, every
BREAKER_PROBE_INTERVAL s at first, then less often up to BREAKER_PROBE_MAX s; when it
does the site is `half_open`: the probe resumes BREAKER_HALF_OPEN_TRIALS of its waiting
steps (not all at once: a recovering ERPNext is not stampeded), the first step that
succeeds closes the breaker and the probe resumes the rest; a failure opens it again. A
half-open site whose trials say nothing for BREAKER_HALF_OPEN_TIMEOUT s is probed again.

Only outage-like failures count (no answer, a timeout, 502/503/504): a 429, a deadlock or
a validation error says nothing about whether the site is up. Without Redis, or when it
cannot be reached, the breaker is closed: steps retry as they always did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
from flask import current_app, has_app_context

from provisioner.engine import throttle
from provisioner.engine.errors import (
    EngineBusy,
    EngineTimeout,
    EngineUnreachable,
    TransientEngineError,
)

KEY_PREFIX = "provisioner:engine-breaker:"


class BreakerStatus(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class SiteState:
    """One engine site's breaker as the workers share it (times are Unix seconds)."""

    site: str
    status: BreakerStatus = BreakerStatus.CLOSED
    reason: str = ""
    opened_at: float | None = None
    next_probe_at: float | None = None
    probes: int = 0  # failed probes since it opened
    half_open_until: float | None = None

    @property
    def available(self) -> bool:
        return self.status != BreakerStatus.OPEN

    def probe_due(self, now: float) -> bool:
        if self.status == BreakerStatus.HALF_OPEN:
            return self.half_open_until is not None and now >= self.half_open_until
        return self.status == BreakerStatus.OPEN and now >= (self.next_probe_at or 0)


class SiteUnavailable(TransientEngineError):
    """The site's breaker is open: the step waits for it without calling it."""

    def __init__(self, state: SiteState) -> None:
        super().__init__(f"the engine is unavailable: {state.reason or 'it did not answer'}")
        self.state = state


def counts_as_outage(exc: BaseException) -> bool:
    """Whether a failure says the site is down (not the engine's own slot cap: that is ours)."""
    return isinstance(exc, EngineUnreachable | EngineTimeout | EngineBusy) and not isinstance(
        exc, throttle.SlotTimeout
    )


def outage_reason(exc: BaseException) -> str:
    return str(exc)[:300]


# A failure: count it; the threshold reached (or any failure while half-open) opens the
# site. KEYS: state hash, failure counter. ARGV: threshold, window s, now, first probe at,
# reason. Returns the state hash after the change.
_FAILED = """
local status = redis.call('HGET', KEYS[1], 'status')
local n = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2])))
if status == 'half_open' or (not status and n >= tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'status', 'open', 'reason', ARGV[5], 'next_probe_at', ARGV[4],
             'opened_at', status and redis.call('HGET', KEYS[1], 'opened_at') or ARGV[3])
  redis.call('HDEL', KEYS[1], 'half_open_until')
end
return redis.call('HGETALL', KEYS[1])
"""


class Breaker:
    """The breakers of every engine site, in one Redis."""

    def __init__(self, client: redis.Redis, settings: dict[str, Any]) -> None:
        self.client = client
        self.failures = int(settings["BREAKER_FAILURES"])
        self.window = float(settings["BREAKER_WINDOW"])
        self.interval = float(settings["BREAKER_PROBE_INTERVAL"])
        self.probe_max = float(settings["BREAKER_PROBE_MAX"])
        self.trials = int(settings["BREAKER_HALF_OPEN_TRIALS"])
        self.half_open_timeout = float(settings["BREAKER_HALF_OPEN_TIMEOUT"])
        self._failed = client.register_script(_FAILED)

    def state(self, site: str) -> SiteState:
        return _state(site, self.client.hgetall(_key(site)))

    def failed(self, site: str, reason: str) -> SiteState:
        now = time.time()
        args: list[str | float] = [self.failures, self.window, now, now + self.interval, reason]
        raw = self._failed(keys=[_key(site), _key(site, "failures")], args=args)
        return _state(site, dict(zip(raw[::2], raw[1::2], strict=True)))

    def succeeded(self, site: str) -> bool:
        """A call answered: the site is closed again. True if it was not closed before."""
        pipe = self.client.pipeline()
        pipe.delete(_key(site, "failures"))
        pipe.delete(_key(site))
        return bool(pipe.execute()[1])

    def probe_failed(self, site: str, reason: str) -> SiteState:
        """A probe found the site still down: probe again later, each time a little later."""
        state = self.state(site)
        probes = state.probes + 1
        delay = min(self.interval * 2 ** min(probes, 16), self.probe_max)
        self.client.hset(
            _key(site),
            mapping={
                "status": BreakerStatus.OPEN,
                "reason": reason,
                "probes": probes,
                "next_probe_at": time.time() + delay,
                "opened_at": state.opened_at or time.time(),
            },
        )
        self.client.hdel(_key(site), "half_open_until")
        return self.state(site)

    def half_open(self, site: str) -> SiteState:
        """A probe found the site answering: steps may try it (the probe sends a few)."""
        self.client.hset(
            _key(site),
            mapping={
                "status": BreakerStatus.HALF_OPEN,
                "half_open_until": time.time() + self.half_open_timeout,
            },
        )
        return self.state(site)

    def sites(self) -> list[SiteState]:
        """Every site whose breaker is not closed."""
        found = []
        for key in self.client.scan_iter(match=KEY_PREFIX + "*", count=500):
            name = key.decode() if isinstance(key, bytes) else key
            if name.endswith(":failures"):
                continue
            found.append(self.state(name[len(KEY_PREFIX) :]))
        return [s for s in found if s.status != BreakerStatus.CLOSED]


def _key(site: str, part: str = "") -> str:
    return f"{KEY_PREFIX}{site}" + (f":{part}" if part else "")


def _state(site: str, raw: dict[Any, Any]) -> SiteState:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    if "status" not in fields:
        return SiteState(site)
    number = {k: float(fields[k]) for k in ("opened_at", "next_probe_at", "half_open_until")
              if fields.get(k)}  # fmt: skip
    return SiteState(
        site=site,
        status=BreakerStatus(fields["status"]),
        reason=fields.get("reason", ""),
        probes=int(fields.get("probes") or 0),
        **number,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def current() -> Breaker | None:
    """The app's breaker, or None when there is no Redis for it (or no app)."""
    if not has_app_context():
        return None
    cfg = current_app.config
    url = cfg.get("ENGINE_THROTTLE_REDIS_URL") or ""
    if not url or int(cfg.get("BREAKER_FAILURES") or 0) <= 0:
        return None
    return Breaker(throttle.redis_client(url), cfg)
