"""/api/v1/audit: the audit log, for administrators only."""

from __future__ import annotations

from datetime import UTC

from flask_login import current_user, login_required
from marshmallow import Schema, validate

from hall import fields
from hall.audit import services
from hall.audit.models import KINDS
from hall.errors import Forbidden
from hall.extensions import Blueprint

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The audit log (administrators)")


class AuditQuerySchema(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    actor = fields.String()
    since = fields.AwareDateTime(default_timezone=UTC)
    until = fields.AwareDateTime(default_timezone=UTC)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class AuditEventSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    kind = fields.String()
    actor = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    method = fields.String(allow_none=True)
    path = fields.String(allow_none=True)
    detail = fields.Dict()


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


@blp.route("/audit")
@login_required
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditPageSchema)
def list_audit(args):
    """Audit events, newest first; filter by kind, actor and time (ISO 8601, UTC unless an offset is given;
    since inclusive, until exclusive)."""
    if not current_user.is_admin:
        raise Forbidden("只有系统管理员可以查看审计日志")
    items, total = services.list_events(args.get("kind"), args.get("actor"), args.get("since"), args.get("until"),
                                        args["page"], args["page_size"])
    return {"items": items, "total": total, "page": args["page"], "page_size": args["page_size"]}
