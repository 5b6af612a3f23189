"""Typed errors for every way an ERPNext answer can fail, and the one classifier that makes them.

Transient errors are worth retrying as they are (the engine or the network was busy);
permanent ones repeat forever until something changes (bad data, missing permission).
ERPNext's 500s are not automatically transient: most are caused by the request itself.

What an engine answers is not trusted: a message is taken only from an ERPNext error body
(one with `exc_type`), never from the text of anything else (an HTML page, another
service's JSON), and credentials are cut out of it before anyone stores it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, ClassVar

import requests

from provisioner.security import scrub

TRANSIENT_STATUSES = frozenset({502, 503, 504})
# Database lock trouble on the engine's side: the same request succeeds when made again.
TRANSIENT_EXC_TYPES = frozenset(
    {"QueryDeadlockError", "QueryTimeoutError", "LockTimeoutError", "TooManyRequestsError"}
)
# Two companies created at once on one site rewrite the shared "Cash" Mode of Payment:
# the loser gets this 417, is fully rolled back, and succeeds when made again.
COMPANY_COLLISION = re.compile(r"Could not find Row #\d+: Default Account: ")
_TAGS = re.compile(r"<[^>]+>")


class EngineError(Exception):
    """An ERPNext answer that is not the result asked for."""

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        exc_type: str | None = None,
        request: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = scrub.text(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.exc_type = exc_type
        self.request = request
        self.retry_after = retry_after

    def summary(self) -> dict[str, Any]:
        """What may be stored and shown: never the engine's traceback or any credential."""
        return {
            "status": self.status,
            "exc_type": self.exc_type,
            "message": self.message,
            "request": self.request,
        }

    def __str__(self) -> str:
        where = f" ({self.request})" if self.request else ""
        status = f"{self.status} " if self.status else ""
        kind = f"{self.exc_type}: " if self.exc_type else ""
        return f"{status}{kind}{self.message}{where}"


class TransientEngineError(EngineError):
    transient = True


class EngineUnreachable(TransientEngineError):
    """No answer at all: connection refused, reset or dropped."""


class EngineTimeout(TransientEngineError):
    """The engine did not answer in time; the write may or may not have been committed."""


class EngineBusy(TransientEngineError):
    """502/503/504: a proxy or the engine is overloaded or in maintenance."""


class RateLimited(TransientEngineError):
    """429 (or TooManyRequestsError): wait `retry_after` seconds."""


class EngineConflict(TransientEngineError):
    """A deadlock, lock timeout or the company-creation collision: make the same request again."""


class PermanentEngineError(EngineError):
    pass


class AuthenticationFailed(PermanentEngineError):
    """401: the API key or secret is wrong."""


class PermissionDenied(PermanentEngineError):
    """403: no credentials, or the user's roles do not allow it."""


class NotFound(PermanentEngineError):
    """404: the document (or, with an HTML body, the whole site) does not exist."""


class DuplicateEntry(PermanentEngineError):
    """409: a document with that name exists already."""

    def still_in_flight(self, what: str) -> EngineConflict:
        """The answer when the duplicate cannot be read: another request is still building
        it (an earlier attempt whose worker was lost, say) and has not committed yet, or it
        failed and rolled back. Either way the same request, made again later, settles it."""
        return EngineConflict(
            f"{what} is being created by another request and is not there yet",
            status=self.status,
            exc_type=self.exc_type,
            request=self.request,
        )


class ValidationFailed(PermanentEngineError):
    """417: ERPNext refused the document (validation, missing field, broken link)."""


class EngineRequestError(PermanentEngineError):
    """Any other answer: a 500 caused by the request, or a status nobody expects."""


class DestinationNotAllowed(PermanentEngineError):
    """The engine's host resolved to an address this service may not call (SSRF guard)."""


_BY_STATUS: dict[int, type[PermanentEngineError]] = {
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: DuplicateEntry,
    417: ValidationFailed,
}


def plain_text(text: str) -> str:
    """ERPNext messages carry HTML (<strong>, <br>); people and logs want plain words."""
    return " ".join(html.unescape(_TAGS.sub("", text)).split())


def engine_message(body: Any, fallback: str) -> str:
    """The human message of a Frappe error body, from its most specific key."""
    if not isinstance(body, dict):
        return plain_text(fallback)
    messages = _server_messages(body.get("_server_messages"))
    if messages:
        return "; ".join(messages)
    for key in ("_error_message", "message"):
        if isinstance(body.get(key), str) and body[key]:
            return plain_text(body[key])
    exception = body.get("exception")
    if isinstance(exception, str) and exception:
        # "frappe.exceptions.ValidationError: text" -> "text"
        head, _, text = exception.partition(": ")
        return plain_text(text or head)
    return plain_text(body.get("exc_type") or fallback)


def _server_messages(raw: Any) -> list[str]:
    """`_server_messages` is a JSON string holding a list of JSON strings, each a dict."""
    if not isinstance(raw, str):
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    messages = []
    for item in items if isinstance(items, list) else []:
        try:
            entry = json.loads(item) if isinstance(item, str) else item
        except ValueError:
            entry = item
        text = entry.get("message") if isinstance(entry, dict) else entry
        if isinstance(text, str) and text.strip():
            messages.append(plain_text(text))
    return messages


def classify_response(
    response: requests.Response, request: str, secrets: Iterable[str] = ()
) -> EngineError:
    """Turn a non-2xx answer into the matching typed error; `secrets` (the credentials the
    request carried) never survive into its message."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    exc_type = body.get("exc_type") if isinstance(body, dict) else None
    if isinstance(exc_type, str) and exc_type:
        message = scrub.text(engine_message(body, exc_type), secrets)
    else:
        exc_type, message = None, _not_erpnext(status)
    kwargs: dict[str, Any] = {"status": status, "exc_type": exc_type, "request": request}

    if status == 429 or exc_type == "TooManyRequestsError":
        return RateLimited(message, retry_after=_retry_after(response), **kwargs)
    if status in TRANSIENT_STATUSES:
        return EngineBusy(message, **kwargs)
    if exc_type in TRANSIENT_EXC_TYPES:
        return EngineConflict(message, **kwargs)
    if status == 417 and exc_type == "LinkValidationError" and COMPANY_COLLISION.search(message):
        return EngineConflict(message, **kwargs)
    return _BY_STATUS.get(status, EngineRequestError)(message, **kwargs)


def _not_erpnext(status: int) -> str:
    """The message of an answer without an ERPNext error body: its text is not shown."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    if status == 404:
        return (
            f"{status} {phrase}, not an ERPNext answer: the site does not exist, "
            "or the URL is not an ERPNext server"
        )
    return f"{status} {phrase}, not an ERPNext answer (its text is not shown)"


def classify_exception(exc: requests.RequestException, request: str) -> EngineError:
    """Turn a transport failure (no HTTP answer) into a transient error."""
    if isinstance(exc, requests.Timeout):
        return EngineTimeout(f"no answer in time: {type(exc).__name__}", request=request)
    return EngineUnreachable(
        f"engine offline (connection failed: {type(exc).__name__})", request=request
    )


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None
