"""What orchestration refuses, in terms the API turns into HTTP answers."""

from __future__ import annotations

from typing import Any


class Conflict(Exception):
    """The request does not fit the current state (409); `details` says what that state is."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}
