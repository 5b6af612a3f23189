"""Flask CLI commands: `flask --app wsgi users create …`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from provisioner.cli.provisioning import provisioning
from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.tenancy import create_user

users = AppGroup("users", help="Manage the people who may sign in.")


@users.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
@click.option("--admin", is_flag=True, help="A platform admin: may act on every workspace.")
def create_user_command(email: str, password: str, name: str, admin: bool) -> None:
    """Create a user (with --admin, the first platform admin)."""
    try:
        user = create_user(email, password, name=name, is_admin=admin)
    except Conflict as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"created {'admin ' if admin else ''}user {user.email} ({user.id})")


def register(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(provisioning)
