"""HTTP: blueprints and the error handlers that give every answer the same JSON shape."""

from __future__ import annotations

from flask import Flask

from provisioner.api import (
    auth,
    errors,
    jobs,
    limits,
    live,
    members,
    metrics,
    openapi,
    ops,
    provisioning,
    recovery,
    tenants,
    verification,
    webhooks,
)
from provisioner.schemas.dialects import Dialect


def register(app: Flask) -> None:
    errors.register(app)
    limits.init_app(app)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(tenants.bp)
    app.register_blueprint(members.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(
        provisioning.blueprint("provisioning", "/api/v1/provisioning", Dialect.PROVISIONER)
    )
    # The platform's workspace page already calls the unversioned paths, in its own dialect.
    app.register_blueprint(
        provisioning.blueprint("provisioning_legacy", "/api/provisioning", Dialect.PAGE)
    )
    app.register_blueprint(tenants.page_blueprint("iam", "/iam"))
    app.register_blueprint(tenants.page_blueprint("iam_api", "/api/iam"))
    app.register_blueprint(live.blueprint("live", "/api/v1/provisioning"))
    app.register_blueprint(live.blueprint("live_legacy", "/api/provisioning"))
    app.register_blueprint(verification.bp)
    app.register_blueprint(recovery.bp)
