"""Celery: the one mechanism for background work.

With HALL_BROKER_URL set, tasks go to the broker (Redis) and a worker runs them; beat sends the periodic
ones (`celery -A hall.worker:celery worker` and `... beat`, see hall/worker.py). Without it, the same tasks
run in-process (task_always_eager), and `start_scheduler` runs the periodic ones from a thread of the
serving process. Either way the code path is the task function, inside an application context.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, Task

log = logging.getLogger(__name__)

celery = Celery("hall")

# name -> (task name, interval): seconds, or the name of a config key that holds the seconds.
# Filled by the domains' tasks modules.
PERIODIC: dict[str, tuple[str, float | str]] = {}


def periodic_interval(app, interval: float | str) -> float:
    """Seconds between two runs of a periodic job (a config key is read from the app)."""
    return float(app.config[interval]) if isinstance(interval, str) else float(interval)


def init_celery(app) -> Celery:
    """Bind the Celery app to a Flask app: broker or eager mode, tasks run in its app context."""

    class AppTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    broker = app.config.get("BROKER_URL")
    celery.conf.update(
        broker_url=broker or "memory://",
        result_backend=app.config.get("RESULT_BACKEND") or None,
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_acks_late=True,  # a worker killed mid-task leaves the message for another worker
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
    )
    celery.Task = AppTask
    celery.conf.beat_schedule = {
        name: {"task": task, "schedule": periodic_interval(app, interval)}
        for name, (task, interval) in PERIODIC.items()
    }
    app.extensions["celery"] = celery
    return celery


def start_scheduler(app, stop: threading.Event | None = None) -> threading.Thread:
    """Run the periodic tasks in-process (the embedded default has no beat)."""
    stop = stop or threading.Event()

    def loop():
        interval = app.config["TIMER_POLL_SECONDS"]
        while not stop.wait(interval):
            for name, (task_name, _interval) in PERIODIC.items():
                try:
                    celery.tasks[task_name].apply()
                except Exception:  # noqa: BLE001 - keep the scheduler alive; the error is logged
                    log.exception("periodic job %s failed", name)

    thread = threading.Thread(target=loop, name="hall-scheduler", daemon=True)
    thread.start()
    return thread
