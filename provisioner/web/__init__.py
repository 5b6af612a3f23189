"""The workspace pages: server-rendered shells whose scripts call the JSON API.

`/workspaces` lists the caller's workspaces and creates one; `/workspaces/<id>` shows a
workspace's provisioning live (Server-Sent Events, polling when the stream is down) with
Retry / Continue / Skip / Cancel. The pages carry no data: the scripts sign in, keep the
bearer token in sessionStorage and render only what the API answers.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Flask, Response, current_app, render_template

from provisioner import catalog

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/web/static",
)

# Scripts and styles come from these files only: nothing inline, nothing from elsewhere;
# the page connects to the API and to the live process (LIVE_PUBLIC_URL, if elsewhere).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; connect-src 'self'{live}"
)


def register(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/workspaces")
def workspaces() -> str:
    countries = sorted(catalog.countries().values(), key=lambda c: c.name)
    return render_template(
        "web/workspaces.html", countries=countries, templates=catalog.templates().values()
    )


@bp.get("/workspaces/<uuid:tenant_id>")
def workspace(tenant_id: uuid.UUID) -> str:
    return render_template(
        "web/workspace.html", tenant_id=tenant_id, live_url=current_app.config["LIVE_PUBLIC_URL"]
    )


@bp.after_request
def _headers(response: Response) -> Response:
    live = current_app.config["LIVE_PUBLIC_URL"]
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(
        live=f" {live}" if live else ""
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
