"""The WSGI entry point, as for any WSGI server (``gunicorn wsgi:app``)."""

from flaskr import create_app

app = create_app()
