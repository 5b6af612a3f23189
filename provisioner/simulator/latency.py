"""How long a warm real ERPNext site takes to answer (medians measured over loopback).

`--latency real` sleeps these; `zero` none; a number scales them (0.1 = ten times faster).
"""

from __future__ import annotations

import re

# (method, path pattern, seconds); the first match wins.
REAL = (
    ("GET", r"^/api/method/(ping|frappe\.auth\.get_logged_user)$", 0.0095),
    ("POST", r"^/api/method/frappe\.desk\.page\.setup_wizard\.setup_wizard\.setup_complete$", 14.0),
    ("POST", r"^/api/method/.*create_transaction_deletion_request$", 3.0),
    ("POST", r"^/api/resource/Warehouse$", 0.023),
    ("POST", r"^/api/resource/POS Opening Entry$", 0.054),
    ("POST", r"^/api/resource/POS Profile$", 0.6),
    ("PUT", r"^/api/resource/Selling Settings/", 0.3),
    ("PUT", r"^/api/resource/Stock Settings/", 1.0),
    ("DELETE", r"^/api/resource/Company/", 3.3),
    ("POST", r"^/api/resource/(Company|Customer)$", 0.0),  # their build time, see BUILD
    ("GET", r"", 0.013),
    ("", r"", 0.03),
)  # fmt: skip
# Time spent building a document inside a request: the window in which parallel builds meet.
BUILD = {"Company": 1.9, "Customer": 0.041}
NEW_SITE = 85.0
BACKUP = 2.6
DROP_SITE = 4.9
_COMPILED = tuple((m, re.compile(p), s) for m, p, s in REAL)


class Latency:
    def __init__(self, setting: str | float = "zero") -> None:
        self.scale = parse_scale(setting)

    def of_request(self, method: str, path: str) -> float:
        if not self.scale:
            return 0.0
        for wanted, pattern, seconds in _COMPILED:
            if (not wanted or wanted == method) and pattern.search(path):
                return seconds * self.scale
        return 0.0

    def build(self, doctype: str) -> float:
        return BUILD.get(doctype, 0.0) * self.scale

    def of(self, seconds: float) -> float:
        return seconds * self.scale


def parse_scale(setting: str | float) -> float:
    if setting in ("zero", None, ""):
        return 0.0
    if setting == "real":
        return 1.0
    try:
        scale = float(setting)
    except (TypeError, ValueError):
        raise ValueError(f"latency must be 'real', 'zero' or a number, not {setting!r}") from None
    if scale < 0:
        raise ValueError("latency scale must not be negative")
    return scale
