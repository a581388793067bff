"""WSGI entry point for production servers: `gunicorn 'crm.wsgi:app'`."""

from dotenv import load_dotenv

from crm import config, create_app

load_dotenv()  # the same .env the `crm` command reads
app = create_app()
config.prepare_instance(app)
