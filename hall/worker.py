"""Entry point of the Celery worker and beat: builds the Flask app so every task runs in its context.

    HALL_BROKER_URL=redis://127.0.0.1:6379/0 celery -A hall.worker:celery worker --loglevel=info
    HALL_BROKER_URL=redis://127.0.0.1:6379/0 celery -A hall.worker:celery beat

Settings come from the same HALL_* variables as the web app (HALL_DATABASE_URL above all).
"""

import os

from celery.signals import worker_process_init

from hall import create_app
from hall.extensions import db

# Not called `app`: Celery's -A lookup would take the Flask app for the Celery one.
flask_app = create_app()
celery = flask_app.extensions["celery"]
# A private queue (tests, or two halls sharing one Redis): worker and beat use it for every task.
if os.environ.get("HALL_TASK_QUEUE"):
    celery.conf.task_default_queue = os.environ["HALL_TASK_QUEUE"]


@worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    # A forked pool process must not share the parent's pooled database connections.
    with flask_app.app_context():
        db.engine.dispose(close=False)
