"""`GET /metrics`: Prometheus text format, read from the database (observability.metrics)."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from provisioner.observability import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    """Prometheus metrics: runs, steps, retries, watchdog, webhooks, queue."""
    return Response(metrics.render(), content_type=CONTENT_TYPE_LATEST)
