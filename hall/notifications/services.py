"""Turning what happens in the hall into messages, and messages into deliveries that are sent exactly once.

Producers never touch the task-submit path: `dispatch_events` reads InstanceEvent rows past a cursor (an
outbox) and writes messages; `check_deadlines` writes reminders and escalations; `send_digests` writes one
summary a day for people who chose it. Every message has a unique `dedup_key`, so a producer that runs
twice (two workers, a retry) writes nothing twice.

A delivery is claimed with a guarded UPDATE that also sets a lease (`claimed_until`) and commits; the send
happens outside any transaction; a guarded UPDATE then marks it sent. A worker killed mid-send leaves a
claim that expires, and the delivery is sent again with the same idempotency key, which the channel (or
its receiver) uses to drop the repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from hall.accounts.models import User
from hall.db_types import utcnow
from hall.errors import Conflict, HallError, Invalid, NotFound
from hall.extensions import db
from hall.notifications import channels
from hall.notifications.models import CHANNELS, ChannelPreference, Delivery, Message, NotificationCursor
from hall.org.models import Membership, OrgUnit
from hall.processes.models import InstanceEvent, ProcessInstance, ProcessVersion
from hall.tasks.models import HumanTask, TaskCandidate

log = logging.getLogger(__name__)

EVENT_KINDS = ("task_created", "urged", "transferred", "signer_added", "returned", "completed")
OPEN = ("ready", "blocked")


def _insert_ignoring_duplicates(model, rows: list[dict], key: str):
    """INSERT … ON CONFLICT (key) DO NOTHING RETURNING id, on SQLite and PostgreSQL alike."""
    if not rows:
        return []
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(model).values(rows).on_conflict_do_nothing(index_elements=[key]).returning(model.id)
    return list(db.session.execute(statement).scalars())


# -- recipients --------------------------------------------------------------------------------------

def task_holders(task_ids) -> dict[int, set[int]]:
    """Who holds each task now: its assignee, or else every candidate (people and role members)."""
    task_ids = list(set(task_ids))
    if not task_ids:
        return {}
    holders: dict[int, set[int]] = defaultdict(set)
    unassigned = []
    for task_id, assignee in db.session.execute(
            sa.select(HumanTask.id, HumanTask.assignee_id).where(HumanTask.id.in_(task_ids))):
        if assignee is not None:
            holders[task_id].add(assignee)
        else:
            unassigned.append(task_id)
    if unassigned:
        candidates = db.session.execute(sa.select(TaskCandidate.task_id, TaskCandidate.user_id, TaskCandidate.role_code,
                                                  TaskCandidate.org_unit_id)
                                        .where(TaskCandidate.task_id.in_(unassigned))).all()
        for task_id, user_id, _, _ in candidates:
            if user_id is not None:
                holders[task_id].add(user_id)
        roles = {(role, unit) for _, user_id, role, unit in candidates if user_id is None and role}
        members = db.session.execute(sa.select(Membership.user_id, Membership.role_code, Membership.org_unit_id)
                                     .where(Membership.role_code.in_({r for r, _ in roles}))).all() if roles else []
        for task_id, user_id, role, unit in candidates:
            if user_id is None and role:
                # The same rule as hall.tasks.services.is_candidate.
                holders[task_id].update(m for m, m_role, m_unit in members if m_role == role and (
                    unit is None or m_unit is None or m_unit == unit))
    return holders


def escalation_target(task: HumanTask, role_code: str, holders: set[int] = frozenset()) -> int | None:
    """The holder of *role_code* at the nearest unit upwards from the assignee's (else the instance's) unit,
    passing over the people who hold the task themselves."""
    unit_id = None
    if task.assignee_id:
        unit_id = db.session.scalar(sa.select(User.org_unit_id).where(User.id == task.assignee_id))
    unit_id = unit_id or task.instance.org_unit_id
    chain: list = []
    if unit_id is not None:
        unit = db.session.get(OrgUnit, unit_id)
        chain = unit.ancestor_ids() or [unit.id]
    # A membership without a unit holds the role for the whole college: the last step upwards.
    chain.append(None)
    members = db.session.execute(sa.select(Membership.user_id, Membership.org_unit_id).where(
        Membership.role_code == role_code,
        sa.or_(Membership.org_unit_id.in_([c for c in chain if c is not None]), Membership.org_unit_id.is_(None)),
    )).all()
    for unit_in_chain in chain:
        for user_id, member_unit in sorted(members, key=lambda m: m[0]):
            if member_unit == unit_in_chain and user_id != task.assignee_id and user_id not in holders:
                return user_id
    return None


# -- producing messages ------------------------------------------------------------------------------

def _link(kind: str, ident: int | None) -> str | None:
    if ident is None:
        return None
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}/{kind}/{ident}"


def _named(instance: ProcessInstance) -> str:
    """How a message names an instance: 申请「…」 for a service someone applied for from the catalogue; a
    process the hall started on someone's behalf (a warning to handle, a diagnosis cycle) is no application."""
    return f"申请「{instance.title}」" if instance.definition.in_catalogue else f"「{instance.title}」"


def _own_first_step(instance: ProcessInstance, task: HumanTask, user_id: int) -> bool:
    """The first step of a service *user_id* has just started from the catalogue, waiting for them: they are
    on its form already, so a 新待办 message would only repeat it."""
    return (user_id == instance.starter_id and instance.definition.in_catalogue
            and task.created_at == instance.started_at)


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M")


def notify(rows: list[dict]) -> list[int]:
    """Write messages (duplicates by dedup_key are dropped) and the deliveries of the new ones.

    Returns the ids of the deliveries to send once the caller has committed.
    """
    if not rows:
        return []
    now = utcnow()
    ids = _insert_ignoring_duplicates(Message, [dict(row, created_at=now) for row in rows], "dedup_key")
    return _deliveries_for(ids, now)


def _deliveries_for(message_ids: list[int], now: datetime, digest_too: bool = False) -> list[int]:
    if not message_ids:
        return []
    messages = db.session.execute(sa.select(Message.id, Message.user_id, Message.kind)
                                  .where(Message.id.in_(message_ids))).all()
    user_ids = {m.user_id for m in messages}
    prefs = {p.user_id: p for p in db.session.scalars(
        sa.select(ChannelPreference).where(ChannelPreference.user_id.in_(user_ids)))}
    if not prefs:
        return []
    users = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(prefs)))}
    rows = []
    for message_id, user_id, kind in messages:
        pref = prefs.get(user_id)
        if pref is None or (pref.digest and kind != "digest" and not digest_too):
            continue
        for channel in pref.channels or []:
            rows.append(dict(message_id=message_id, channel=channel, address=address_of(pref, users[user_id], channel),
                             idempotency_key=f"hall-m{message_id}-{channel}", state="pending", attempts=0,
                             next_attempt_at=now, created_at=now))
    return _insert_ignoring_duplicates(Delivery, rows, "idempotency_key")


def address_of(pref: ChannelPreference, user: User, channel: str) -> str | None:
    """Where a message on *channel* goes: an address of the user's own choosing only once it is verified
    (the account's e-mail until then)."""
    if channel == "mail":
        return pref.email if is_verified(pref, user, "mail") else user.email
    if channel in ("wecom", "dingtalk"):
        return pref.mobile or user.phone
    if channel == "wecom_app":
        return pref.wecom_user_id if is_verified(pref, user, "wecom_app") else None
    return None


def is_verified(pref: ChannelPreference, user: User, channel: str) -> bool:
    """Whether the address the user chose on *channel* is one messages go to."""
    if channel == "mail":
        return bool(pref.email) and pref.email in (pref.verified_email, user.email)
    return bool(pref.wecom_user_id) and pref.wecom_user_id == pref.verified_wecom_user_id


# A code sent to a new address: six digits, good for 30 minutes and five tries.
CODE_MINUTES = 30
CODE_TRIES = 5
CODE_INTERVAL_SECONDS = 60
_VERIFIED_FIELD = {"mail": ("email", "verified_email"), "wecom_app": ("wecom_user_id", "verified_wecom_user_id")}


def _code_hash(user: User, channel: str, address: str, code: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{user.id}:{channel}:{address}:{code}".encode(), hashlib.sha256).hexdigest()


def _send_code(pref: ChannelPreference, user: User, channel: str, address: str) -> None:
    """Send a fresh code to *address* on *channel* and remember its hash; 422 when it cannot be sent, 429
    within a minute of the last code (nobody floods an address with codes)."""
    earlier = (pref.verification or {}).get(channel)
    if earlier and earlier.get("sent_at") and \
            utcnow() - datetime.fromisoformat(earlier["sent_at"]) < timedelta(seconds=CODE_INTERVAL_SECONDS):
        field = _VERIFIED_FIELD[channel][0]
        raise HallError("验证码刚刚发送过，请 1 分钟后再试", errors={field: ["验证码刚刚发送过，请 1 分钟后再试"]},
                        code=429)
    code = f"{secrets.randbelow(10 ** 6):06d}"
    out = channels.Outgoing(
        title="诊改办事大厅：验证码",
        body=f"{user.name}，您正在把此地址设为诊改办事大厅的通知地址，验证码为 {code}，{CODE_MINUTES} 分钟内有效。"
             "如非本人操作，请忽略本消息。",
        link=None, address=address, key=f"verify-{user.id}-{channel}-{secrets.token_hex(4)}")
    try:
        channels.send(channel, current_app.config, out)
    except channels.ChannelError as err:
        field = _VERIFIED_FIELD[channel][0]
        raise Invalid(f"验证码发送失败：{err.reason}", errors={field: [f"验证码发送失败：{err.reason}"]}) from None
    pending = dict(pref.verification or {})
    pending[channel] = {"address": address, "hash": _code_hash(user, channel, address, code),
                        "sent_at": utcnow().isoformat(),
                        "expires_at": (utcnow() + timedelta(minutes=CODE_MINUTES)).isoformat(), "attempts": 0}
    pref.verification = pending


def verify_address(user: User, channel: str, code: str) -> ChannelPreference:
    """The code sent to the user's new address on *channel*: right, the address is used from now on; wrong,
    422 (a try counted); expired or tried too often, 409 (save the address again for a new code)."""
    pref = db.session.get(ChannelPreference, user.id)
    pending = dict((pref.verification or {}) if pref else {})
    entry = pending.get(channel)
    field, verified = _VERIFIED_FIELD.get(channel, (None, None))
    if pref is None or entry is None or field is None or getattr(pref, field) != entry["address"]:
        raise Conflict("没有待验证的地址，请先保存新的通知地址")
    if utcnow() > datetime.fromisoformat(entry["expires_at"]) or entry["attempts"] >= CODE_TRIES:
        raise Conflict("验证码已失效，请重新保存通知地址以获取新的验证码")
    if not hmac.compare_digest(entry["hash"], _code_hash(user, channel, entry["address"], str(code).strip())):
        pending[channel] = {**entry, "attempts": entry["attempts"] + 1}
        pref.verification = pending
        db.session.commit()  # the try counts even though the answer is a refusal
        raise Invalid("验证码不正确", errors={"code": ["验证码不正确"]})
    setattr(pref, verified, entry["address"])
    pending.pop(channel)
    pref.verification = pending or None
    db.session.commit()
    return pref


def _cursor() -> NotificationCursor:
    cursor = db.session.get(NotificationCursor, "events")
    if cursor is None:
        # First run on an existing hall: start at the events of the last day, not at the beginning of time.
        since = utcnow() - timedelta(days=1)
        start = db.session.scalar(sa.select(sa.func.max(InstanceEvent.id)).where(InstanceEvent.at < since)) or 0
        _insert_ignoring_cursor(start)
        cursor = db.session.get(NotificationCursor, "events")
    return cursor


def _insert_ignoring_cursor(start: int) -> None:
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(NotificationCursor).values(name="events", last_event_id=start)
                       .on_conflict_do_nothing(index_elements=["name"]))


def dispatch_events(limit: int = 500) -> list[int]:
    """Messages for the instance events past the cursor; returns delivery ids to send (already committed)."""
    cursor = _cursor()
    start = cursor.last_event_id
    settle = utcnow() - timedelta(seconds=float(current_app.config["NOTIFY_SETTLE_SECONDS"]))
    # Events younger than the settle time wait for the next run: a transaction that took its event id
    # earlier may still be committing, and the cursor must not pass it.
    events = db.session.scalars(sa.select(InstanceEvent).where(InstanceEvent.id > start, InstanceEvent.at <= settle)
                                .order_by(InstanceEvent.id).limit(limit)).all()
    if not events:
        db.session.commit()
        return []
    wanted = [e for e in events if e.kind in EVENT_KINDS]
    rows = _messages_for_events(wanted)
    deliveries = notify(rows)
    moved = db.session.execute(sa.update(NotificationCursor).where(
        NotificationCursor.name == "events", NotificationCursor.last_event_id == start
    ).values(last_event_id=events[-1].id))
    if moved.rowcount != 1:
        # Another run got there first; its messages are the same ones (dedup keys), ours are dropped.
        db.session.rollback()
        return []
    db.session.commit()
    return deliveries


def _messages_for_events(events: list[InstanceEvent]) -> list[dict]:
    if not events:
        return []
    instances = {i.id: i for i in db.session.scalars(
        sa.select(ProcessInstance).where(ProcessInstance.id.in_({e.instance_id for e in events}))
        .options(selectinload(ProcessInstance.definition)))}
    task_ids = {e.task_id for e in events if e.task_id}
    for e in events:
        if e.kind == "urged":
            task_ids.update((e.data or {}).get("tasks") or [])
        if e.kind == "signer_added" and (e.data or {}).get("sign_task"):
            task_ids.add(e.data["sign_task"])
    tasks = {t.id: t for t in db.session.scalars(sa.select(HumanTask).where(HumanTask.id.in_(task_ids)))}
    holders = task_holders(task_ids)
    actors = {u.id: u for u in db.session.scalars(
        sa.select(User).where(User.id.in_({e.actor_id for e in events if e.actor_id})))}
    rows = []

    def add(event, user_id, title, body, task_id=None, suffix=""):
        if user_id is None:
            return
        rows.append(dict(user_id=user_id, kind=event.kind, title=title[:300], body=body,
                         instance_id=event.instance_id, task_id=task_id,
                         dedup_key=f"event:{event.id}{suffix}:user:{user_id}"))

    for e in events:
        instance = instances.get(e.instance_id)
        if instance is None:
            continue
        data = e.data or {}
        actor = actors.get(e.actor_id)
        task = tasks.get(e.task_id)
        if e.kind == "task_created" and task is not None:
            due = f"，请于 {_local(task.due_at)} 前办理" if task.due_at else ""
            for user_id in holders.get(task.id, ()):
                if not _own_first_step(instance, task, user_id):
                    add(e, user_id, f"新待办：{task.name}", f"{_named(instance)}等待您办理{due}。", task.id)
        elif e.kind == "urged":
            who = actor.name if actor else "申请人"
            for task_id in data.get("tasks") or []:
                t = tasks.get(task_id)
                if t is None or t.state not in OPEN:
                    continue
                for user_id in holders.get(task_id, ()):
                    add(e, user_id, f"催办：{t.name}", f"{who}催办了{_named(instance)}，请尽快办理「{t.name}」。",
                        task_id, suffix=f":task:{task_id}")
        elif e.kind == "transferred" and task is not None:
            target = db.session.scalar(sa.select(User.id).where(User.username == data.get("to")))
            who = actor.name if actor else "他人"
            note = f"附言：{data['comment']}" if data.get("comment") else ""
            add(e, target, f"转办：{task.name}", f"{who}将{_named(instance)}的「{task.name}」转交给您。{note}",
                task.id)
        elif e.kind == "signer_added":
            sign = tasks.get(data.get("sign_task"))
            who = actor.name if actor else "他人"
            if sign is not None:
                add(e, sign.assignee_id, f"加签：{instance.title}", f"{who}请您对「{task.name if task else sign.name}」"
                    f"提出意见。", sign.id)
        elif e.kind == "returned":
            reason = (data.get("return_reason") or data.get("reason") or "") if isinstance(data, dict) else ""
            body = f"您的{_named(instance)}在「{task.name if task else '审批'}」被退回。" + (
                f"原因：{reason}" if reason else "")
            title = f"申请被退回：{instance.title}" if instance.definition.in_catalogue else f"被退回：{instance.title}"
            add(e, instance.starter_id, title, body)
        elif e.kind == "completed":
            result = data.get("outcome_label") if isinstance(data, dict) else None
            if result:
                add(e, instance.starter_id, f"申请已办结（{result}）：{instance.title}",
                    f"您的申请「{instance.title}」已办结，结果：{result}。")
            else:
                add(e, instance.starter_id, f"申请已办结：{instance.title}", f"您的申请「{instance.title}」已办结。")
    return rows


def check_deadlines(now: datetime | None = None) -> list[int]:
    """Reminders before the due time and escalations after it; returns delivery ids to send."""
    from hall.processes import registry

    now = now or utcnow()
    config = current_app.config
    horizon = now + timedelta(days=31)
    tasks = db.session.scalars(sa.select(HumanTask).where(
        HumanTask.state.in_(OPEN), HumanTask.due_at.is_not(None), HumanTask.due_at <= horizon)).all()
    if not tasks:
        return []
    done = set(db.session.scalars(sa.select(Message.dedup_key).where(
        Message.task_id.in_([t.id for t in tasks]), Message.kind.in_(("reminder", "escalation")))))
    done_prefixes = {key.rsplit(":user:", 1)[0] for key in done}
    versions: dict[int, object] = {}

    def properties(task: HumanTask) -> dict:
        """The process's properties under the task's own: a step may name its own `escalateTo` (销假 overdue
        goes to the student's counsellor, not to the head of the department)."""
        instance = task.instance
        if instance.process_version_id not in versions:
            versions[instance.process_version_id] = registry.compiled(
                db.session.get(ProcessVersion, instance.process_version_id))
        process = versions[instance.process_version_id]
        spec = process.user_tasks.get(task.element_id)
        return {**(process.metadata or {}), **(spec.properties if spec else {})}

    rows = []
    pending_holders = []
    overdue_holders = task_holders([t.id for t in tasks if now >= t.due_at])
    for task in tasks:
        props = properties(task)
        try:
            remind_hours = float(props.get("remindBeforeHours") or config["REMIND_BEFORE_HOURS"])
        except ValueError:
            remind_hours = float(config["REMIND_BEFORE_HOURS"])
        stamp = task.due_at.strftime("%Y%m%dT%H%M%S")
        if now >= task.due_at:
            prefix = f"escalation:{task.id}:{stamp}"
            if prefix in done_prefixes:
                continue
            role = props.get("escalateTo") or config["ESCALATE_TO"]
            head = escalation_target(task, role, overdue_holders.get(task.id, set()))
            if head is None:
                log.warning("no %s above task %s to escalate to", role, task.id)
                continue
            who = task.assignee.name if task.assignee else "候选办理人"
            rows.append(dict(user_id=head, kind="escalation", title=f"超期未办：{task.name}",
                             body=f"{_named(task.instance)}的「{task.name}」（{who}）已于 {_local(task.due_at)} "
                                  f"超期，请督办。", instance_id=task.instance_id, task_id=task.id,
                             dedup_key=f"{prefix}:user:{head}"))
        elif now >= task.due_at - timedelta(hours=remind_hours):
            prefix = f"reminder:{task.id}:{stamp}"
            if prefix not in done_prefixes:
                pending_holders.append((task, prefix))
    holders = task_holders([t.id for t, _ in pending_holders])
    for task, prefix in pending_holders:
        for user_id in holders.get(task.id, ()):
            rows.append(dict(user_id=user_id, kind="reminder", title=f"即将到期：{task.name}",
                             body=f"{_named(task.instance)}的「{task.name}」将于 {_local(task.due_at)} 到期，"
                                  f"请及时办理。", instance_id=task.instance_id, task_id=task.id,
                             dedup_key=f"{prefix}:user:{user_id}"))
    deliveries = notify(rows)
    db.session.commit()
    return deliveries


def send_digests(now: datetime | None = None) -> list[int]:
    """One summary a day for each user who chose the digest, once the local digest hour has passed."""
    now = now or utcnow()
    config = current_app.config
    local = now.astimezone(ZoneInfo(config["TIMEZONE"]))
    if local.hour < int(config["DIGEST_HOUR"]):
        return []
    users = list(db.session.scalars(sa.select(ChannelPreference.user_id).where(ChannelPreference.digest.is_(True))))
    if not users:
        return []
    pending = db.session.scalars(sa.select(Message).where(
        Message.user_id.in_(users), Message.digested_at.is_(None), Message.kind != "digest", Message.created_at <= now
    ).order_by(Message.user_id, Message.id)).all()
    by_user: dict[int, list[Message]] = defaultdict(list)
    for message in pending:
        by_user[message.user_id].append(message)
    created = []
    for user_id, messages in by_user.items():
        lines = [f"{i}. {m.title}" for i, m in enumerate(messages[:50], 1)]
        if len(messages) > 50:
            lines.append(f"……另有 {len(messages) - 50} 条，请到消息中心查看。")
        ids = _insert_ignoring_duplicates(Message, [dict(
            user_id=user_id, kind="digest", title=f"每日汇总：{len(messages)} 条新消息（{local:%Y-%m-%d}）",
            body="\n".join(lines), dedup_key=f"digest:{local:%Y-%m-%d}:user:{user_id}", created_at=now)], "dedup_key")
        if ids:  # today's digest already went out: these messages wait for tomorrow's
            db.session.execute(sa.update(Message).where(Message.id.in_([m.id for m in messages]))
                               .values(digested_at=now).execution_options(synchronize_session=False))
            created += ids
    deliveries = _deliveries_for(created, now, digest_too=True)
    db.session.commit()
    return deliveries


# -- delivering --------------------------------------------------------------------------------------

def _backoff(attempts: int) -> timedelta:
    config = current_app.config
    seconds = float(config["NOTIFY_RETRY_SECONDS"]) * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, float(config["NOTIFY_RETRY_MAX_SECONDS"])))


def deliver(delivery_id: int) -> str:
    """Send one delivery if it is due and nobody holds it; returns its state afterwards (or "skipped")."""
    config = current_app.config
    now = utcnow()
    claim = db.session.execute(sa.update(Delivery).where(
        Delivery.id == delivery_id,
        sa.or_(sa.and_(Delivery.state.in_(("pending", "failed")), Delivery.next_attempt_at.is_not(None),
                       Delivery.next_attempt_at <= now),
               sa.and_(Delivery.state == "sending", Delivery.claimed_until < now)),
    ).values(state="sending", attempts=Delivery.attempts + 1,
             claimed_until=now + timedelta(seconds=float(config["NOTIFY_CLAIM_SECONDS"]))))
    if claim.rowcount != 1:
        db.session.rollback()
        return "skipped"
    db.session.commit()
    delivery = db.session.get(Delivery, delivery_id)
    attempts = delivery.attempts
    message = delivery.message
    link = _link("tasks", message.task_id) if message.task_id else _link("instances", message.instance_id)
    out = channels.Outgoing(title=message.title, body=message.body, address=delivery.address,
                            key=delivery.idempotency_key, link=link)
    channel = delivery.channel
    db.session.rollback()  # no transaction stays open while the network call runs
    error = None
    permanent = False
    try:
        channels.send(channel, config, out)
    except channels.ChannelError as err:
        error, permanent = err.reason, err.permanent
    except Exception as err:  # noqa: BLE001 - an unexpected failure is retried like a refused send
        log.exception("delivery %s failed", delivery_id)
        error = f"发送出错：{err.__class__.__name__}: {err}"
    done = utcnow()
    guard = sa.update(Delivery).where(Delivery.id == delivery_id, Delivery.state == "sending",
                                      Delivery.attempts == attempts)
    if error is None:
        values = dict(state="sent", sent_at=done, claimed_until=None, next_attempt_at=None, last_error=None)
    elif permanent or attempts >= int(config["NOTIFY_MAX_ATTEMPTS"]):
        values = dict(state="failed", claimed_until=None, next_attempt_at=None,
                      last_error=error if permanent else f"{error}（已重试 {attempts} 次，不再自动重试）")
    else:
        values = dict(state="failed", claimed_until=None, next_attempt_at=done + _backoff(attempts), last_error=error)
    db.session.execute(guard.values(**values))
    db.session.commit()
    return values["state"]


def due_deliveries(now: datetime | None = None, limit: int = 200) -> list[int]:
    """Deliveries to (re)try now: due pending or failed ones, and ones whose claim has expired."""
    now = now or utcnow()
    return list(db.session.scalars(sa.select(Delivery.id).where(sa.or_(
        sa.and_(Delivery.state.in_(("pending", "failed")), Delivery.next_attempt_at.is_not(None),
                Delivery.next_attempt_at <= now),
        sa.and_(Delivery.state == "sending", Delivery.claimed_until < now),
    )).order_by(Delivery.id).limit(limit)))


def retry_delivery(delivery_id: int) -> Delivery:
    """Put a delivery that gave up back in the queue (an administrator fixed the channel)."""
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"投递 {delivery_id} 不存在")
    if delivery.state != "failed":
        raise Invalid("只有失败的投递可以重试")
    delivery.next_attempt_at = utcnow()
    db.session.commit()
    return delivery


# -- the message centre ------------------------------------------------------------------------------

def list_messages(user: User, unread_only: bool = False, page: int = 1, page_size: int = 20):
    query = sa.select(Message).where(Message.user_id == user.id)
    if unread_only:
        query = query.where(Message.read_at.is_(None))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Message.id.desc()).limit(page_size).offset((page - 1) * page_size)).all()
    return items, total


def unread_count(user: User) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.user_id == user.id, Message.read_at.is_(None))) or 0


def mark_read(user: User, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.user_id != user.id:
        raise NotFound(f"消息 {message_id} 不存在")
    if message.read_at is None:
        message.read_at = utcnow()
        db.session.commit()
    return message


def mark_all_read(user: User) -> int:
    result = db.session.execute(sa.update(Message).where(Message.user_id == user.id, Message.read_at.is_(None))
                                .values(read_at=utcnow()))
    db.session.commit()
    return result.rowcount


def preference(user: User) -> ChannelPreference:
    return db.session.get(ChannelPreference, user.id) or ChannelPreference(user_id=user.id, channels=[], digest=False)


def set_preference(user: User, values: dict) -> ChannelPreference:
    """Save a user's channel choice; a chosen channel needs the hall configured and, where it must, an address."""
    pref = db.session.get(ChannelPreference, user.id)
    if pref is None:
        pref = ChannelPreference(user_id=user.id, channels=[], digest=False)
        db.session.add(pref)
    for name in ("email", "mobile", "wecom_user_id", "digest"):
        if name in values:
            setattr(pref, name, values[name] or (False if name == "digest" else None))
    new_addresses = [channel for channel, (field, _) in _VERIFIED_FIELD.items()
                     if values.get(field) and not is_verified(pref, user, channel)]
    chosen = list(dict.fromkeys(values.get("channels", pref.channels) or []))
    errors = {}
    available = channels.configured(current_app.config)
    for channel in chosen:
        if channel not in CHANNELS:
            errors.setdefault("channels", []).append(f"未知的渠道 {channel}")
        elif channel not in available:
            errors.setdefault("channels", []).append(f"大厅未配置{channels.LABELS[channel]}")
    if "mail" in chosen and not (pref.email or user.email):
        errors["email"] = ["选择邮件通知需要填写邮箱地址"]
    if "wecom_app" in chosen and not pref.wecom_user_id:
        errors["wecom_user_id"] = ["选择企业微信应用消息需要填写企业微信账号"]
    if errors:
        db.session.rollback()
        raise Invalid("通知渠道设置有误", errors=errors)
    pref.channels = chosen
    try:
        for channel in new_addresses:  # a code goes to each new address; it is used once the code comes back
            _send_code(pref, user, channel, getattr(pref, _VERIFIED_FIELD[channel][0]))
    except HallError:
        db.session.rollback()
        raise
    db.session.commit()
    return pref
