"""Small factories shared by the notification tests."""

from __future__ import annotations

import sqlalchemy as sa

from hall.extensions import db
from tests.conftest import bpmn_sequence

DUE_IN_HOURS = ('<bpmn:extensionElements><spiffworkflow:properties>'
                '<spiffworkflow:property name="dueInHours" value="{hours}"/>'
                '</spiffworkflow:properties></bpmn:extensionElements>')


def user(username: str):
    from hall.accounts.models import User

    return db.session.scalar(sa.select(User).where(User.username == username))


def head_task_flow(deploy_bpmn, key: str = "notify_flow", hours: float | None = None):
    """Deploy a one-step flow whose step lies in the dept_head lane (optionally due in *hours*)."""
    props = DUE_IN_HOURS.format(hours=hours) if hours is not None else ""
    deploy_bpmn(bpmn_sequence(key, 1, lane="dept_head", extra_props=props))


def start(key: str = "notify_flow", username: str = "t1001", by_the_hall: bool = False):
    """Start *key* as *username* (or, *by_the_hall*, for them as the hall starts a warning's handling);
    returns (instance id, id of its open task)."""
    from hall.processes import services
    from hall.tasks.models import HumanTask

    instance = services.start_instance(key, user(username), {}, check_startable=not by_the_hall)
    task_id = db.session.scalar(sa.select(HumanTask.id).where(HumanTask.instance_id == instance.id))
    return instance.id, task_id


def messages(username: str, kind: str | None = None):
    from hall.notifications.models import Message

    db.session.rollback()
    query = sa.select(Message).where(Message.user_id == user(username).id)
    if kind:
        query = query.where(Message.kind == kind)
    return list(db.session.scalars(query.order_by(Message.id)))


def choose(username: str, channels: list[str], **values):
    """Save *username*'s channel choice directly (the API test covers the checks)."""
    from hall.notifications.models import ChannelPreference

    pref = db.session.get(ChannelPreference, user(username).id) or ChannelPreference(user_id=user(username).id)
    pref.channels = channels
    pref.digest = values.pop("digest", False)
    for name, value in values.items():
        setattr(pref, name, value)
        if name in ("email", "wecom_user_id"):  # as if its owner had typed the code sent there
            setattr(pref, f"verified_{name}", value)
    db.session.add(pref)
    db.session.commit()


def dispatch() -> int:
    from hall.notifications.tasks import dispatch_job

    return dispatch_job.delay().get()
