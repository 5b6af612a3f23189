"""Credentials cut out of text that comes from elsewhere: engine answers, command output,
log fields (at any depth).

What an engine answers is not trusted: one that echoes the request's `Authorization`
header would otherwise put the token into step errors, job logs, webhook payloads and
Flower. Every engine text is scrubbed before it is stored, and every log line before it is
written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
MIN_KNOWN = 4  # shorter "secrets" would cut ordinary words out of messages

# Field names whose values are secrets, wherever they appear.
SECRET_NAME = re.compile(
    r"authorization|password|passwd|secret|api[_-]?key|token|cookie|signature", re.I
)
_NAMED_VALUE = (
    r"[\w-]*(?:api[_-]?key|secret|password|passwd|access[_-]?token|auth[_-]?token|authorization)"
)
_CREDENTIAL = re.compile(
    # `token key:secret` (Frappe's scheme), `Bearer <jwt>`, `Basic <base64>`
    r"(?P<token>\btoken\s+)[^\s:\"']+:[^\s\"',;]+"
    r"|(?P<bearer>\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<basic>\bbasic\s+)[A-Za-z0-9+/=]{8,}"
    # api_key=…, "api_secret": "…", password: … (the value after a credential's name)
    rf"|(?P<named>[\"']?\b{_NAMED_VALUE}[\"']?\s*[:=]\s*[\"']?)"
    r"(?!token\s|bearer\s|basic\s|\[redacted\])[^\s\"',;&}]+",
    re.I,
)


def text(value: str, known: Iterable[str] = ()) -> str:
    """`value` with credential-shaped parts, and any of the `known` secrets, replaced."""
    for secret in known:
        if secret and len(secret) >= MIN_KNOWN:
            value = value.replace(secret, REDACTED)
    return _CREDENTIAL.sub(_keep_prefix, value)


def tree(value: Any) -> Any:
    """A copy of a JSON-like value: strings scrubbed, values of secret-named keys replaced."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and SECRET_NAME.search(key) else tree(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [tree(item) for item in value]
    return value


def _keep_prefix(match: re.Match[str]) -> str:
    prefix = match["token"] or match["bearer"] or match["basic"] or match["named"]
    return prefix + REDACTED
