"""Background jobs of the process domain."""

from hall.jobs import PERIODIC, celery

# Fired as often as the in-process scheduler polls (HALL_TIMER_POLL_SECONDS), under beat as well.
PERIODIC["fire-due-timers"] = ("hall.fire_due_timers", "TIMER_POLL_SECONDS")


@celery.task(name="hall.fire_due_timers")
def fire_due_timers_job() -> int:
    """Advance the instances whose timers are due; returns how many moved."""
    from hall.processes.services import fire_due_timers

    return fire_due_timers()
