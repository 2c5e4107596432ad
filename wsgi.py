"""WSGI entry point: `gunicorn wsgi:app`."""

from hall import create_app

app = create_app()
