"""Celery jobs of the notifications: the outbox dispatcher, deadlines, the daily digest and the deliveries.

Producers commit their messages and deliveries first, then queue one `hall.notifications.deliver` per
delivery; the periodic `deliver_due` sweep picks up whatever a lost message, a crash or a back-off left.
"""

from hall.jobs import PERIODIC, celery

PERIODIC["notifications-dispatch"] = ("hall.notifications.dispatch", "TIMER_POLL_SECONDS")
PERIODIC["notifications-deadlines"] = ("hall.notifications.deadlines", "TIMER_POLL_SECONDS")
PERIODIC["notifications-digest"] = ("hall.notifications.digest", "TIMER_POLL_SECONDS")
PERIODIC["notifications-deliver-due"] = ("hall.notifications.deliver_due", "TIMER_POLL_SECONDS")


def _send_later(delivery_ids: list[int]) -> int:
    for delivery_id in delivery_ids:
        deliver_job.delay(delivery_id)
    return len(delivery_ids)


@celery.task(name="hall.notifications.dispatch")
def dispatch_job() -> int:
    """Messages for the instance events since the last run; returns how many deliveries were queued."""
    from hall.notifications.services import dispatch_events

    return _send_later(dispatch_events())


@celery.task(name="hall.notifications.deadlines")
def deadlines_job() -> int:
    """Reminders and escalations for the tasks near or past their due time."""
    from hall.notifications.services import check_deadlines

    return _send_later(check_deadlines())


@celery.task(name="hall.notifications.digest")
def digest_job() -> int:
    """The daily digest of the users who chose it."""
    from hall.notifications.services import send_digests

    return _send_later(send_digests())


@celery.task(name="hall.notifications.deliver")
def deliver_job(delivery_id: int) -> str:
    """Send one delivery (a no-op when it is already sent, held by another worker or not yet due)."""
    from hall.notifications.services import deliver

    return deliver(delivery_id)


@celery.task(name="hall.notifications.deliver_due")
def deliver_due_job() -> int:
    """Retry the due failed deliveries and the ones whose worker died; returns how many were sent."""
    from hall.notifications.services import deliver, due_deliveries

    return sum(deliver(delivery_id) == "sent" for delivery_id in due_deliveries())
