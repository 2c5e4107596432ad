"""Writing and reading audit events.

Events are written on their own connection and committed at once: a refused request rolls its own work
back, but the record that it was refused must stay."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import has_request_context, request

from hall.audit.models import KINDS, AuditEvent
from hall.extensions import db


def request_facts() -> dict:
    """Address, browser, method and path of the current request (empty outside one)."""
    if not has_request_context():
        return {}
    return {"ip": client_ip(), "user_agent": (request.user_agent.string or "")[:400] or None,
            "method": request.method, "path": request.path[:400]}


def client_ip() -> str | None:
    # The address the WSGI server saw; a proxy in front sets it through ProxyFix, not through headers
    # that any client could forge.
    return (request.remote_addr or None) if has_request_context() else None


def record(kind: str, actor: str | None = None, **detail) -> None:
    """Append one event now, whatever becomes of the request's own transaction."""
    assert kind in KINDS, kind
    row = {"at": datetime.now().astimezone(), "kind": kind, "actor": (actor or None) and str(actor)[:100],
           "detail": detail, **request_facts()}
    with db.engine.begin() as conn:
        conn.execute(sa.insert(AuditEvent), [row])


def list_events(kind: str | None = None, actor: str | None = None, since: datetime | None = None,
                until: datetime | None = None, page: int = 1, page_size: int = 50) -> tuple[list[AuditEvent], int]:
    """Newest first, filtered by kind, actor and a time range (since inclusive, until exclusive)."""
    where = []
    if kind:
        where.append(AuditEvent.kind == kind)
    if actor:
        where.append(AuditEvent.actor == actor)
    if since:
        where.append(AuditEvent.at >= since)
    if until:
        where.append(AuditEvent.at < until)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(*where))
    items = db.session.scalars(sa.select(AuditEvent).where(*where).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                               .limit(page_size).offset((page - 1) * page_size)).all()
    return items, total
