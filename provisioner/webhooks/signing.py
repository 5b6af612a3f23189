"""The signature of a delivery: `X-Provisioner-Signature: t=<unix time>,v1=<hex>`.

v1 is HMAC-SHA256 with the webhook's secret over `"<t>.<body>"`. The timestamp is signed
with the body, so a receiver can refuse replays of old deliveries (docs/operations.md).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Provisioner-Signature"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header's value for `body` sent at `timestamp` (Unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
