"""Celery workers for the outbox (optional: `pip install 'undersigned[celery]'`, set CELERY_BROKER_URL).

Run workers on any number of machines with `celery -A crm.mailmerge.tasks worker`; each task drains the outbox
until it is empty, claiming rows with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL, so two workers never take
the same row.
"""

import os

from celery import Celery

from crm import make_app

celery_app = Celery("undersigned", broker=os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0")
celery_app.conf.update(
    task_acks_late=False,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)
_APP = None


def _flask_app():
    """The Flask app of this worker process, made once."""
    global _APP
    if _APP is None:
        _APP = make_app()
    return _APP


@celery_app.task(name="undersigned.drain_outbox")
def drain_outbox() -> dict:
    """Drain the outbox until nothing is left."""
    from crm.mailmerge.worker import Worker

    with _flask_app().app_context():
        return Worker().run(until_empty=True).as_dict()


def kick(app) -> None:
    """Ask Celery for MAIL_CELERY_FANOUT draining tasks (one per worker you run)."""
    celery_app.conf.broker_url = app.config["CELERY_BROKER_URL"]
    for _ in range(int(app.config.get("MAIL_CELERY_FANOUT") or 4)):
        drain_outbox.delay()
