"""Flask CLI commands: `flask --app wsgi users|secrets|provisioning …`."""

from __future__ import annotations

from flask import Flask

from provisioner.cli.provisioning import provisioning
from provisioner.cli.secrets import secrets
from provisioner.cli.users import users


def register(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(secrets)
    app.cli.add_command(provisioning)
