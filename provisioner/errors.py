"""What the service refuses, in terms every layer shares and the API turns into HTTP answers.

They live at the bottom of the package so that any layer can raise them (a webhook registry,
a plan check, a transition) without importing the layer that maps them to a status code.
"""

from __future__ import annotations

from typing import Any


class Conflict(Exception):
    """The request does not fit the current state (409); `details` says what that state is."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}


class InvalidTransition(Exception):
    """A change of state that the current state does not allow (409)."""

    def __init__(self, what: str, current: str, target: str, reason: str | None = None) -> None:
        self.what, self.current, self.target = what, current, target
        super().__init__(reason or f"{what} is {current}; it cannot become {target}")


class PlanError(ValueError):
    """A plan that cannot run (422); `field` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class QueueUnavailable(Exception):
    """The broker could not be reached; nothing was published (503)."""
