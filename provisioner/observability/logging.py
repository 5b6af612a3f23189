"""Structured logs: one JSON object per line, from the web processes and the workers.

Every line carries the fields bound in `observability.context` (correlation id, tenant, run,
step, attempt) and the record's `extra`. Configured once per process: by the app factory
(`init_app`) and, in Celery processes, by the `setup_logging` signal, so that Celery installs
no handlers of its own. The web side takes the correlation id from the `X-Correlation-ID`
request header (or makes one), binds it for the request and sends it back on the response;
`orchestration.chain` stamps it on the chains the request publishes, the step task binds it
again in the worker, and the engine client sends it to ERPNext.

Secrets are masked twice, at any depth of a field's value (dicts and lists included): fields
named like credentials are replaced, and credential-shaped text (`token key:secret`,
`Bearer …`, `Basic …`, `api_secret=…`) is cut out of messages and tracebacks
(`security/scrub.py`). Engine errors never carry the engine's own traceback (`exc`), see
`engine/errors.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from contextlib import suppress
from typing import Any

import structlog
from celery.signals import setup_logging
from flask import Flask, Response, g, request
from flask.logging import default_handler

from provisioner.observability import context
from provisioner.security import scrub

HANDLER_NAME = "provisioner-json"
_UNLOGGED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes

log = logging.getLogger(__name__)


def configure(level: int | str = "INFO") -> None:
    """Send every record of the process through one JSON handler on the root logger."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(_formatter())
    root.addHandler(handler)
    root.setLevel(level)


def init_app(app: Flask) -> None:
    """JSON logs for the web process, and the correlation id of each request."""
    configure(app.config["LOG_LEVEL"])
    app.logger.removeHandler(default_handler)  # records reach the root handler instead
    app.before_request(_begin_request)
    app.after_request(_end_request)
    app.teardown_request(_unbind)


@setup_logging.connect
def _celery_logging(loglevel: int | str | None = None, **_: Any) -> None:
    configure(loglevel or "INFO")


def _formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            _add_context,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _redact,
            structlog.processors.JSONRenderer(),
        ],
    )


def _add_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in context.current().items():
        event.setdefault(key, value)
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if scrub.SECRET_NAME.search(key):
            event[key] = scrub.REDACTED
        elif isinstance(value, str | dict | list | tuple):
            event[key] = scrub.tree(value)
    return event


def _begin_request() -> None:
    supplied = request.headers.get(context.CORRELATION_HEADER, "")
    correlation_id = context.correlation_id_from(supplied)
    g.log_token = context.bind(correlation_id=correlation_id)
    g.log_started = time.perf_counter()


def _end_request(response: Response) -> Response:
    correlation_id = context.correlation_id()
    if correlation_id:
        response.headers[context.CORRELATION_HEADER] = correlation_id
    started = g.get("log_started")
    if request.path in _UNLOGGED_PATHS:
        return response
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        },
    )
    return response


def _unbind(_: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        with suppress(ValueError):  # a streamed response ends in another context
            context.reset(token)
