"""Account mail prepared off the request thread, so a request takes as long whatever the answer.

`/password/forgot` must not reveal whether an account exists by how long it takes: looking the address up, signing
a link and writing the message all happen here, after the same answer has been sent for every address.
"""

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import Flask

from crm.extensions import db

log = logging.getLogger(__name__)
_executor: ThreadPoolExecutor | None = None
_pending: set[Future] = set()
# Jobs start this long after being handed over, so their work (a commit for a known address, next to nothing for
# an unknown one) does not compete with the request that is still answering (the GIL, the disk).
START_DELAY_SECONDS = 0.1
MAX_PENDING = 500  # a flood of requests from many addresses must not grow the queue without bound


def submit(app: Flask, job, *args) -> Future | None:
    """Run `job(*args)` in an app context on the background thread; errors are logged, never raised."""
    global _executor
    if len(_pending) >= MAX_PENDING:
        log.warning("account mail queue full (%d jobs): dropping one", len(_pending))
        return None
    if _executor is None:  # made on first use: a process forked after import (gunicorn) gets its own thread
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="account-mail")

    def run():
        time.sleep(START_DELAY_SECONDS)
        with app.app_context():
            try:
                job(*args)
            except Exception:  # a background job has nobody to answer: log it
                log.exception("account mail job failed")
                db.session.rollback()
            finally:
                db.session.remove()

    future = _executor.submit(run)
    _pending.add(future)
    future.add_done_callback(_pending.discard)
    return future


def wait_for_jobs(timeout: float = 10.0) -> None:
    """Block until every submitted job is done (tests, and commands that exit right after)."""
    wait(list(_pending), timeout=timeout)
