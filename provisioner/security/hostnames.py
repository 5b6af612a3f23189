"""The strict syntax of host and site names: what a `Host` header may carry (RFC 1123 labels).

Site names become `Host` headers, folder names on the engine host and arguments of `bench`
commands, so nothing else passes: no spaces, CR/LF, NUL, slashes, underscores or capitals.
"""

from __future__ import annotations

import re

MAX_LENGTH = 253
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
RULE = "lowercase letters, digits and hyphens in dot-separated labels of at most 63 characters"


def is_hostname(name: str) -> bool:
    return len(name) <= MAX_LENGTH and _HOSTNAME.fullmatch(name) is not None
