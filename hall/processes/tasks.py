"""Background jobs of the process domain."""

from hall.jobs import PERIODIC, celery

# Fired as often as the in-process scheduler polls (HALL_TIMER_POLL_SECONDS), under beat as well.
PERIODIC["fire-due-timers"] = ("hall.fire_due_timers", "TIMER_POLL_SECONDS")


@celery.task(name="hall.fire_due_timers")
def fire_due_timers_job() -> int:
    """Advance the instances whose timers are due; returns how many moved."""
    from hall.processes.services import fire_due_timers

    return fire_due_timers()


PERIODIC["forget-start-requests"] = ("hall.forget_start_requests", 3600)


@celery.task(name="hall.forget_start_requests")
def forget_start_requests_job() -> int:
    """Drop start-form tokens older than a day; returns how many went."""
    from hall.processes.services import forget_start_requests

    return forget_start_requests()
