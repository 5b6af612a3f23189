"""Frappe's exceptions as the simulator raises them, and the bodies real ERPNext sends.

An error body carries `exc_type`, `exception` ("frappe.exceptions.X: text"),
`_server_messages` (a JSON string of a list of JSON strings) and `exc` (a traceback
string), exactly as the contract records; some kinds leave some keys out.
"""

from __future__ import annotations

import json
from typing import Any

TRACEBACK = 'Traceback (most recent call last):\n  File "apps/frappe/frappe/app.py", line 114'


class FrappeError(Exception):
    status = 417
    exc_type = "ValidationError"
    title = "Message"
    with_messages = True

    def __init__(self, message: str = "", *, title: str | None = None, bare: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.bare = bare  # some answers carry nothing but exc_type
        if title:
            self.title = title

    def body(self) -> dict[str, Any]:
        if self.bare:
            return {"exc_type": self.exc_type}
        body: dict[str, Any] = {
            "exc_type": self.exc_type,
            "exception": f"frappe.exceptions.{self.exc_type}: {plain(self.message)}",
            "exc": json.dumps([f"{TRACEBACK}\nfrappe.exceptions.{self.exc_type}"]),
        }
        if self.with_messages and self.message:
            body["_server_messages"] = server_messages(self.message, title=self.title)
        return body


def server_messages(*messages: str, title: str = "Message", indicator: str = "red") -> str:
    rows = [
        json.dumps({"message": m, "title": title, "indicator": indicator, "raise_exception": 1})
        for m in messages
    ]
    return json.dumps(rows)


def plain(message: str) -> str:
    return message.replace("<strong>", "").replace("</strong>", "")


class ValidationError(FrappeError):
    pass


class LinkValidationError(FrappeError):
    exc_type = "LinkValidationError"


class MandatoryError(FrappeError):
    exc_type = "MandatoryError"
    title = "Missing Fields"


class LinkExistsError(FrappeError):
    exc_type = "LinkExistsError"


class DuplicateEntryError(FrappeError):
    status = 409
    exc_type = "DuplicateEntryError"
    title = "Duplicate Name"


class DoesNotExistError(FrappeError):
    status = 404
    exc_type = "DoesNotExistError"
    title = "Not Found"


class AuthenticationError(FrappeError):
    status = 401
    exc_type = "AuthenticationError"
    with_messages = False


class PermissionError_(FrappeError):
    status = 403
    exc_type = "PermissionError"
    title = "Not permitted"

    def body(self) -> dict[str, Any]:
        return {**super().body(), "_error_message": self.message}


class ServerError(FrappeError):
    """The 500s a bad request causes on real ERPNext; they repeat forever."""

    status = 500
    with_messages = False

    def __init__(self, exc_type: str, message: str) -> None:
        super().__init__(message)
        self.exc_type = exc_type

    def body(self) -> dict[str, Any]:
        return {
            "exc_type": self.exc_type,
            "exception": f"{self.exc_type}: {self.message}",
            "exc": json.dumps([f"{TRACEBACK}\n{self.exc_type}: {self.message}"]),
        }


def already_exists(doctype: str, name: str) -> DuplicateEntryError:
    return DuplicateEntryError(f"{doctype} <strong>{name}</strong> already exists")


def not_found(doctype: str, name: str) -> DoesNotExistError:
    return DoesNotExistError(f"{doctype} {name} not found")


def missing_link(label: str, value: Any) -> LinkValidationError:
    return LinkValidationError(f"Could not find {label}: {value}", title="Message")
