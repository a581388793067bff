"""WSGI entry point for production servers: `gunicorn 'crm.wsgi:app'`."""

from crm import config, create_app

app = create_app()
config.prepare_instance(app)
