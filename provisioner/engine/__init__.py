"""The only code that speaks HTTP to ERPNext: the client and the typed errors it raises."""

from provisioner.engine.client import EngineClient, EngineCredentials
from provisioner.engine.errors import (
    DuplicateEntry,
    EngineError,
    NotFound,
    PermanentEngineError,
    TransientEngineError,
)

__all__ = [
    "DuplicateEntry",
    "EngineClient",
    "EngineCredentials",
    "EngineError",
    "NotFound",
    "PermanentEngineError",
    "TransientEngineError",
]
