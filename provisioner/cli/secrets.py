"""`flask --app wsgi secrets new-key|derived-key|reencrypt`: rotating ENCRYPTION_KEY.

1. `secrets new-key` prints a fresh Fernet key. Put it first in ENCRYPTION_KEY, the old key
   after it (`secrets derived-key` prints the old one if ENCRYPTION_KEY was empty), and
   restart every process: new secrets use the new key, old ones still decrypt.
2. `secrets reencrypt` re-encrypts every stored secret with the new key.
3. Drop the old key from ENCRYPTION_KEY and restart.
"""

from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from provisioner.extensions import db
from provisioner.models import Tenant, Webhook
from provisioner.security import crypto

secrets = AppGroup("secrets", help="Rotate the keys of secrets at rest.")
# Every encrypted column: (model, column attribute names).
ENCRYPTED = ((Tenant, ("engine_api_key_enc", "engine_api_secret_enc")), (Webhook, ("secret_enc",)))


@secrets.command("new-key")
def new_key() -> None:
    """Print a new Fernet key (for ENCRYPTION_KEY)."""
    click.echo(Fernet.generate_key().decode())


@secrets.command("derived-key")
def derived_key() -> None:
    """Print the key derived from SECRET_KEY (what is used while ENCRYPTION_KEY is empty)."""
    click.echo(crypto.derived_key(current_app.config["SECRET_KEY"]))


@secrets.command("reencrypt")
def reencrypt() -> None:
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEY."""
    count = 0
    for model, columns in ENCRYPTED:
        for row in db.session.execute(select(model).with_for_update()).scalars():
            for column in columns:
                value = getattr(row, column)
                if value:
                    try:
                        setattr(row, column, crypto.reencrypted(value))
                    except ValueError as exc:
                        db.session.rollback()
                        raise click.ClickException(f"{model.__tablename__}: {exc}") from None
                    count += 1
    db.session.commit()
    click.echo(f"re-encrypted {count} secrets with the newest key")
