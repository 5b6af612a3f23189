"""The ERPNext REST client: Frappe's conventions in, typed results and errors out.

One pooled `requests.Session` per process and engine URL; connect and read timeouts on
every call; `token key:secret` auth; the site chosen by `Host`/`X-Frappe-Site-Name`;
the correlation id of the current work sent as a header so the engine's logs line up.
A client given a `Guard` connects only to addresses it permits, checked on every connection
(security/urls.py: an engine URL a platform admin set, whose DNS may change).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from provisioner.engine import throttle
from provisioner.engine.errors import (
    DestinationNotAllowed,
    EngineRequestError,
    NotFound,
    classify_exception,
    classify_response,
)
from provisioner.observability import context
from provisioner.security.urls import DestinationRefused, Guard, GuardedAdapter

log = logging.getLogger(__name__)

Filters = list[list[Any]] | dict[str, Any]


@dataclass(frozen=True)
class EngineCredentials:
    """Where an engine site is and how to sign in; the secret never shows in a repr."""

    url: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    site: str | None = None

    @property
    def site_key(self) -> str:
        """Identity of one engine site, for locks that serialize writes to it."""
        return f"{self.url.rstrip('/')}#{self.site or ''}"


class _Sessions:
    """One pooled session per (process, engine URL, guard): connections are reused, never
    shared across a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[tuple[int, str, Guard | None], requests.Session] = {}

    def get(self, base_url: str, guard: Guard | None) -> requests.Session:
        key = (os.getpid(), base_url, guard)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = requests.Session()
                pool: dict[str, Any] = {"pool_connections": 4, "pool_maxsize": 16, "max_retries": 0}
                adapter = HTTPAdapter(**pool) if guard is None else GuardedAdapter(guard, **pool)
                session.trust_env = guard is None  # no proxy setting bypasses a guard
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                self._sessions[key] = session
            return session


_sessions = _Sessions()


class EngineClient:
    """Small typed helpers over Frappe's `/api/resource` and `/api/method` endpoints."""

    def __init__(
        self,
        credentials: EngineCredentials,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 30.0,
        guard: Guard | None = None,
    ) -> None:
        self.credentials = credentials
        self.timeout = (connect_timeout, read_timeout)
        self.guard = guard
        self._base = credentials.url.rstrip("/")

    # -- documents -------------------------------------------------------------------------

    def get_doc(self, doctype: str, name: str) -> dict[str, Any] | None:
        """The document, or None when the engine says it does not exist."""
        try:
            return self._document("GET", _doc_path(doctype, name))
        except NotFound as exc:
            if exc.exc_type == "DoesNotExistError":
                return None
            raise

    def get_list(
        self,
        doctype: str,
        *,
        filters: Filters | None = None,
        fields: list[str] | None = None,
        order_by: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "fields": json.dumps(fields or ["name"]),
            "limit_page_length": limit,
        }
        if filters:
            params["filters"] = json.dumps(filters)
        if order_by:
            params["order_by"] = order_by
        path = f"/api/resource/{quote(doctype, safe='')}"
        rows = self._request("GET", path, params=params)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise _unexpected(f"GET {path}", "a list of documents")
        return rows

    def find(self, doctype: str, filters: Filters, *, order_by: str = "creation asc") -> str | None:
        """The name of the oldest document matching `filters`, or None."""
        rows = self.get_list(doctype, filters=filters, order_by=order_by, limit=1)
        return str(rows[0]["name"]) if rows else None

    def count(self, doctype: str, filters: Filters | None = None) -> int:
        params: dict[str, Any] = {"doctype": doctype}
        if filters:
            params["filters"] = json.dumps(filters)
        return int(self.call("frappe.client.get_count", **params))

    def insert(self, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        return self._document("POST", f"/api/resource/{quote(doctype, safe='')}", body=doc)

    def update(self, doctype: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._document("PUT", _doc_path(doctype, name), body=changes)

    def submit(self, doctype: str, name: str) -> dict[str, Any]:
        return self.update(doctype, name, {"docstatus": 1})

    def delete(self, doctype: str, name: str) -> None:
        self._request("DELETE", _doc_path(doctype, name))

    def get_single(self, doctype: str) -> dict[str, Any]:
        """A single doctype (Selling Settings, …) is addressed by its own name."""
        return self._document("GET", _doc_path(doctype, doctype))

    def update_single(self, doctype: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.update(doctype, doctype, changes)

    # -- methods ---------------------------------------------------------------------------

    def call(self, method: str, **params: Any) -> Any:
        """GET /api/method/<method>: for reads."""
        return self._request("GET", f"/api/method/{method}", params=params)

    def post(
        self, method: str, payload: dict[str, Any], *, read_timeout: float | None = None
    ) -> Any:
        """POST /api/method/<method>: for methods that change something."""
        return self._request(
            "POST", f"/api/method/{method}", body=payload, read_timeout=read_timeout
        )

    def ping(self) -> bool:
        return bool(self.call("ping") == "pong")

    def logged_user(self) -> str:
        """A cheap check that the credentials work."""
        return str(self.call("frappe.auth.get_logged_user"))

    # -- transport -------------------------------------------------------------------------

    def _document(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """A call whose answer must be one document (an engine's answer is not trusted)."""
        answer = self._request(method, path, **kw)
        if not isinstance(answer, dict):
            raise _unexpected(f"{method} {path}", "a document")
        return answer

    def _headers(self) -> dict[str, str]:
        creds = self.credentials
        headers = {
            "Authorization": f"token {creds.api_key}:{creds.api_secret}",
            "Accept": "application/json",
            context.CORRELATION_HEADER: context.correlation_id() or context.new_correlation_id(),
        }
        if creds.site:
            headers["Host"] = creds.site
            headers["X-Frappe-Site-Name"] = creds.site
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        label = f"{method} {path}"
        timeout = (self.timeout[0], read_timeout or self.timeout[1])
        started = time.perf_counter()
        # A slot of the site's concurrency cap (if any), leased for as long as the call may take.
        try:
            with throttle.slot(self.credentials.site_key, lease=sum(timeout) + 5):
                response = _sessions.get(self._base, self.guard).request(
                    method,
                    self._base + path,
                    params=params,
                    json=body,
                    headers=self._headers(),
                    timeout=timeout,
                )
        except requests.RequestException as exc:
            error = classify_exception(exc, label)
            log.warning("engine call failed", extra={"engine_request": label, "error": str(error)})
            raise error from None
        except DestinationRefused as exc:
            raise DestinationNotAllowed(str(exc), request=label) from None
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        log.debug(
            "engine call",
            extra={"engine_request": label, "status": response.status_code, "ms": elapsed_ms},
        )
        if not response.ok:
            creds = self.credentials
            raise classify_response(response, label, secrets=(creds.api_key, creds.api_secret))
        try:
            payload = response.json()
        except ValueError:
            raise EngineRequestError(
                "the engine answered with something that is not JSON",
                status=response.status_code,
                request=label,
            ) from None
        return payload.get("data", payload.get("message")) if isinstance(payload, dict) else payload


def _unexpected(label: str, wanted: str) -> EngineRequestError:
    return EngineRequestError(f"the engine did not answer with {wanted}", request=label)


def _doc_path(doctype: str, name: str) -> str:
    return f"/api/resource/{quote(doctype, safe='')}/{quote(name, safe='')}"
