"""`flask --app wsgi users create|list|disable|enable|set-password`: the people who sign in.

Disabling a user or changing their password ends every token they hold at once (the token
version in each token no longer matches); a disabled user cannot sign in again.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from provisioner import signals
from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.models import User
from provisioner.models.types import utcnow
from provisioner.tenancy import create_user, find_user

users = AppGroup("users", help="Manage the people who may sign in.")
EMAIL = click.argument("email")
PASSWORD = click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)


@users.command("create")
@EMAIL
@PASSWORD
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


@users.command("list")
def list_users() -> None:
    """Every user: email, id, platform admin or not, enabled or disabled."""
    for user in db.session.execute(select(User).order_by(User.email)).scalars():
        kind = "admin" if user.is_admin else "user"
        state = f"disabled {user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else "enabled"
        click.echo(f"{user.email}  {user.id}  {kind}  {state}")


@users.command("disable")
@EMAIL
def disable(email: str) -> None:
    """Disable a user: no sign-in, and every token they hold stops working now."""
    user = _user(email)
    if user.disabled_at is None:
        user.disabled_at = utcnow()
    user.revoke_tokens()
    db.session.commit()
    signals.access_revoked.send()
    click.echo(f"disabled {user.email}; their tokens no longer work")


@users.command("enable")
@EMAIL
def enable(email: str) -> None:
    """Let a disabled user sign in again (their old tokens stay revoked)."""
    user = _user(email)
    user.disabled_at = None
    db.session.commit()
    click.echo(f"enabled {user.email}")


@users.command("set-password")
@EMAIL
@PASSWORD
def set_password(email: str, password: str) -> None:
    """Set a user's password; every token they hold stops working now."""
    if len(password) < 8:
        raise click.ClickException("a password has at least 8 characters")
    user = _user(email)
    user.set_password(password)
    db.session.commit()
    signals.access_revoked.send()
    click.echo(f"password of {user.email} set; their earlier tokens no longer work")


def _user(email: str) -> User:
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user
