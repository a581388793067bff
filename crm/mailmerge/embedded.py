"""Who drains the outbox: the embedded background thread (no broker) or Celery (CELERY_BROKER_URL set).

The thread is started lazily, on the first request the app serves (create_app does no I/O), or by crm.wsgi;
it is
off under TESTING unless MAIL_EMBEDDED_WORKER is set true.
"""

import logging
import threading

from flask import Flask, has_request_context

log = logging.getLogger(__name__)
_LOCK = threading.Lock()


def embedded_enabled(app: Flask) -> bool:
    """Whether this process should run the embedded worker thread."""
    if app.config.get("CELERY_BROKER_URL"):
        return False
    setting = app.config.get("MAIL_EMBEDDED_WORKER")
    return (not app.testing) if setting is None else bool(setting)


def _loop(app: Flask, stop: threading.Event, health) -> None:
    """Drain forever (until stopped). The worker rides out database and relay outages itself; anything else
    (a bug) is logged, shown as the worker's state, and the worker starts afresh after a pause."""
    from crm.common.errors import database_busy
    from crm.extensions import db
    from crm.mailmerge.worker import Worker

    while not stop.is_set():
        with app.app_context():
            try:
                Worker(health=health).run(stop=stop, idle_wait=float(app.config.get("MAIL_POLL_SECONDS") or 1.0))
            except Exception as exc:  # keep the thread alive; the next round starts afresh
                if database_busy(exc):
                    # Another writer (an import, a backup) holds SQLite's lock: nothing is wrong, wait a little.
                    log.warning("outbox worker: the database is busy; trying again in a second")
                    db.session.rollback()
                    health.set("waiting for the database", exc)
                    stop.wait(1)
                    continue
                log.exception("outbox worker stopped; restarting in 5 seconds")
                health.set("restarting", exc)
                stop.wait(5)
            finally:
                db.session.remove()
    health.set("stopped")


def worker_health(app: Flask) -> dict:
    """The embedded worker's state for /healthz and the outbox page: off, or its Health as plain values."""
    state = app.extensions.get("mailmerge_worker")
    if state is None:
        if app.config.get("CELERY_BROKER_URL"):
            return {"state": "celery"}
        return {"state": "on first request" if embedded_enabled(app) else "off"}
    health = state["health"].as_dict()
    if not state["thread"].is_alive() and health["state"] != "stopped":
        health["state"] = "dead"  # cannot happen short of an interpreter error; never silent if it does
    return health


def start_embedded_worker(app: Flask) -> threading.Event | None:
    """Start the background worker thread once per app; returns its stop event (None when not enabled)."""
    if not embedded_enabled(app):
        return None
    with _LOCK:
        state = app.extensions.get("mailmerge_worker")
        if state is not None and state["thread"].is_alive():
            return state["stop"]
        from crm.mailmerge.worker import Health

        stop, health = threading.Event(), Health()
        thread = threading.Thread(target=_loop, args=(app, stop, health), name="undersigned-outbox", daemon=True)
        app.extensions["mailmerge_worker"] = {"thread": thread, "stop": stop, "health": health}
        thread.start()
        return stop


def stop_embedded_worker(app: Flask, timeout: float = 10) -> None:
    """Stop the background thread (tests and shutdown)."""
    state = app.extensions.pop("mailmerge_worker", None)
    if state:
        state["stop"].set()
        state["thread"].join(timeout)


def notify(app: Flask) -> None:
    """There is new work: kick Celery, or make sure the embedded thread of a serving process runs.

    A command-line process (`crm merge queue|send`, an import) never starts the thread: it is a daemon that the
    process's exit would kill in the middle of a message, and `crm merge send` drains the outbox itself. What such a
    process queues is sent by the web server's thread, `crm worker` or Celery.
    """
    if app.config.get("CELERY_BROKER_URL"):
        from crm.mailmerge.tasks import kick

        kick(app)
        return
    if has_request_context():
        start_embedded_worker(app)


def wake_workers() -> None:
    """Tell the current app's embedded worker (or Celery) there is work."""
    from flask import current_app

    notify(current_app._get_current_object())


def install(app_or_bp) -> None:
    """Start the embedded worker on the first request a process serves."""
    from flask import current_app

    @app_or_bp.before_app_request
    def _start_outbox_worker():
        app = current_app._get_current_object()
        if "mailmerge_worker" not in app.extensions and embedded_enabled(app):
            start_embedded_worker(app)
