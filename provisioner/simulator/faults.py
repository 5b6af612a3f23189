"""Faults injected on demand: what goes wrong, for which requests, how often.

Kinds: `latency` (sleep `seconds`, or a random time up to `max_seconds`, then answer),
`error` (answer `status` with a Frappe error body), `timeout` (hold the request
`seconds`, then drop it unanswered), `drop` (close the connection, nothing done),
`commit_then_drop` and `commit_then_timeout` (do the work, keep it, lose the answer).
Each is filtered by `method`, `path` (a regular expression searched in the path) and
`site`, and fires for the next `count` matching calls, or at a `rate` (0-1), or always.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("latency", "error", "timeout", "drop", "commit_then_drop", "commit_then_timeout")
_ids = itertools.count(1)


class FaultSpecError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str | None = None
    site: str | None = None
    count: int | None = None  # None: every matching call
    rate: float | None = None
    status: int = 500
    exc_type: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    max_seconds: float | None = None
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultSpecError("kind", f"must be one of {', '.join(KINDS)}")
        for name in ("method", "path", "site", "exc_type", "message"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise FaultSpecError(name, "must be a string")
        if self.path is not None:
            try:
                self._pattern = re.compile(self.path)
            except re.error as exc:
                raise FaultSpecError("path", f"not a regular expression ({exc})") from None
        if self.count is not None and (not _is_int(self.count) or self.count < 1):
            raise FaultSpecError("count", "must be a whole number, at least 1")
        if self.rate is not None and (not _is_number(self.rate) or not 0 <= self.rate <= 1):
            raise FaultSpecError("rate", "must be a number between 0 and 1")
        if not _is_int(self.status) or not 100 <= self.status <= 599:
            raise FaultSpecError("status", "must be an HTTP status (100-599)")
        if not _is_number(self.seconds) or self.seconds < 0:
            raise FaultSpecError("seconds", "must be a number, not negative")
        if self.max_seconds is not None and (
            not _is_number(self.max_seconds) or self.max_seconds < self.seconds
        ):
            raise FaultSpecError("max_seconds", "must be a number, not less than seconds")
        if not isinstance(self.headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
        ):
            raise FaultSpecError("headers", "must be an object of strings")
        if self.method:
            self.method = self.method.upper()

    def matches(self, method: str, path: str, site: str) -> bool:
        return (
            (not self.method or self.method == method)
            and (self.path is None or bool(self._pattern.search(path)))
            and (not self.site or self.site == site)
        )

    def delay(self, rng: random.Random) -> float:
        if self.max_seconds is not None:
            return rng.uniform(self.seconds, self.max_seconds)
        return self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class FaultBook:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.rng = random.Random(seed)

    def add(self, **spec: Any) -> Fault:
        known = Fault.__dataclass_fields__.keys() - {"id", "fired"}
        for key in spec:
            if key not in known:
                raise FaultSpecError(key, "unknown field")
        if "kind" not in spec:
            raise FaultSpecError("kind", "is required")
        try:
            fault = Fault(**spec)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FaultSpecError):
                raise
            raise FaultSpecError("spec", str(exc)) from None
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def take(self, method: str, path: str, site: str) -> Fault | None:
        """The fault that fires for this call, if any (a counted one is used up)."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path, site):
                    continue
                if fault.rate is not None and self.rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                if fault.count is not None and fault.fired >= fault.count:
                    self._faults.remove(fault)
                return fault
        return None
