"""Quality subjects, standards, monitoring points, targets, measurements and warnings."""

from __future__ import annotations

from hall.extensions import db
from hall.quality.models import Subject


def responsible_user_id(subject_id: int) -> int | None:
    """The responsible person of a subject (lane `subject_owner`)."""
    subject = db.session.get(Subject, subject_id)
    return subject.responsible_user_id if subject else None
