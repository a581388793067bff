"""WSGI entry point for production servers: `gunicorn 'crm.wsgi:app'`."""

from dotenv import load_dotenv

from crm import config, create_app
from crm.mailmerge.embedded import start_embedded_worker

load_dotenv()  # the same .env the `crm` command reads
app = create_app()
config.prepare_instance(app)
# The embedded outbox worker (no broker configured) runs in each serving process.
start_embedded_worker(app)
