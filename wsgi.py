"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""

from provisioner import create_app

app = create_app()
