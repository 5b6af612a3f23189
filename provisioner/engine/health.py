"""A short-lived, per-process cache of "the engine answers and the credentials work".

Many runs start at once against one engine; asking it twice per run is wasted work.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from provisioner.engine.client import EngineClient


@dataclass(frozen=True)
class EngineHealth:
    user: str
    setup_complete: bool
    checked_at: float  # time.time() of the check
    cached: bool = False


class HealthCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, EngineHealth] = {}

    def check(self, engine: EngineClient, ttl: float) -> EngineHealth:
        key = engine.credentials.site_key
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and time.time() - entry.checked_at < ttl:
            return EngineHealth(entry.user, entry.setup_complete, entry.checked_at, cached=True)
        entry = EngineHealth(
            user=engine.logged_user(),
            setup_complete=setup_complete(engine),
            checked_at=time.time(),
        )
        with self._lock:
            self._entries[key] = entry
        return entry

    def forget(self, engine: EngineClient) -> None:
        with self._lock:
            self._entries.pop(engine.credentials.site_key, None)


def setup_complete(engine: EngineClient) -> bool:
    """Whether the site's setup wizard has run (before it, no company can be made)."""
    value = engine.call(
        "frappe.client.get_single_value", doctype="System Settings", field="setup_complete"
    )
    return bool(int(value or 0))


health_cache = HealthCache()
