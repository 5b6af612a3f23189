"""The Flask app factory: config, extensions, blueprints, error handlers, CLI, Celery."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin

from provisioner import config
from provisioner.celery_app import celery_init_app
from provisioner.extensions import db, migrate
from provisioner.observability import logging as json_logging
from provisioner.security import startup

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """The app, configured from the environment (`config.from_env`) and then `overrides`;
    a `CELERY` mapping in `overrides` is merged into the Celery settings."""
    app = Flask("provisioner")
    app.session_interface = NoCookieSessions()
    app.config.from_mapping(config.from_env())
    overrides = dict(overrides or {})
    app.config["CELERY"].update(overrides.pop("CELERY", {}))
    app.config.update(overrides)
    startup.check(app.config)  # no SECRET_KEY, no service (docs/SECURITY.md)
    json_logging.init_app(app)

    # Derived here, after the overrides: the extra engines use the session's database.
    app.config["SQLALCHEMY_BINDS"] = config.binds(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    _sqlite_pragmas(app)

    from provisioner import api, cli, web
    from provisioner.api import not_modified, status
    from provisioner.live import announce, feed
    from provisioner.orchestration import verifications
    from provisioner.webhooks import deliveries

    api.register(app)
    not_modified.install(app, feed.Feed)  # status polls answered from memory, in front
    cli.register(app)
    web.register(app)
    celery_init_app(app)
    # The side effects of run changes (orchestration sends the signals, see signals.py).
    status.connect()
    deliveries.connect()
    announce.connect()
    verifications.connect()  # a REPAIR run that ends is verified
    return app


class NoCookieSessions(SessionInterface):
    """Flask's cookie session, never used: callers carry bearer tokens and stream tickets,
    so no request reads a session cookie and no answer sets one (docs/SECURITY.md)."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None  # Flask then gives the request a null session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def _sqlite_pragmas(app: Flask) -> None:
    """The embedded demo's SQLite: WAL so that readers do not block the writer."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    with app.app_context():

        @event.listens_for(db.engine, "connect")
        def _on_connect(dbapi_conn: Any, _: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
