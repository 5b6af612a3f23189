"""Every error leaves as JSON {error: {code, message, details?}} with the right status."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from provisioner.errors import Conflict, InvalidTransition, PlanError, QueueUnavailable
from provisioner.security.urls import UrlRefused

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: Any = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers


def body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _reply(status: int, code: str, message: str, details: Any = None, headers: Any = None):
    response = jsonify(body(code, message, details))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(exc: ApiError):
        return _reply(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError):
        return _reply(
            422, "validation_error", "some fields are not valid", exc.normalized_messages()
        )

    @app.errorhandler(PlanError)
    def _plan(exc: PlanError):
        return _reply(422, "validation_error", str(exc), {exc.field: [str(exc)]})

    @app.errorhandler(UrlRefused)
    def _url(exc: UrlRefused):
        return _reply(422, "validation_error", exc.message, {exc.field: [exc.message]})

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return _reply(413, "payload_too_large", f"the body is larger than {limit} bytes")

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict):
        return _reply(409, "conflict", exc.message, exc.details)

    @app.errorhandler(InvalidTransition)
    def _transition(exc: InvalidTransition):
        return _reply(409, "conflict", str(exc), {"status": exc.current})

    @app.errorhandler(QueueUnavailable)
    def _queue(_: QueueUnavailable):
        message = "the task queue is unreachable; nothing was started, try again shortly"
        return _reply(503, "queue_unavailable", message, headers={"Retry-After": "5"})

    @app.errorhandler(OperationalError)
    def _database(exc: DBAPIError):
        log.error("database unavailable: %s", exc.orig)
        message = "the database is unreachable; try again shortly"
        return _reply(503, "database_unavailable", message, headers={"Retry-After": "5"})

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return _reply(exc.code or 500, code, exc.description or exc.name, headers=_allow(exc))

    @app.errorhandler(Exception)
    def _unexpected(_: Exception):
        log.exception("unexpected error")
        return _reply(500, "internal_error", "something went wrong on our side")


def _allow(exc: HTTPException) -> dict[str, str]:
    headers = dict(exc.get_headers()) if exc.code == 405 else {}
    return {k: v for k, v in headers.items() if k == "Allow"}
