"""Background jobs of the process domain."""

from hall.jobs import PERIODIC, celery

PERIODIC["fire-due-timers"] = ("hall.fire_due_timers", 5.0)


@celery.task(name="hall.fire_due_timers")
def fire_due_timers_job() -> int:
    from hall.processes.services import fire_due_timers

    return fire_due_timers()
