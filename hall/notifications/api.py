"""/api/v1/messages and /api/v1/me/channels: the message centre and each user's choice of channels."""

from __future__ import annotations

from flask import current_app
from flask_login import current_user, login_required
from marshmallow import Schema, validate

from hall import fields
from hall.extensions import Blueprint
from hall.notifications import channels, services
from hall.notifications.models import CHANNELS
from hall.processes.schemas import PageArgs

blp = Blueprint("messages", __name__, url_prefix="/api/v1", description="Message centre and notification channels")


class MessageQuerySchema(PageArgs):
    unread = fields.Boolean(load_default=False)


class MessageSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    instance_id = fields.Integer(allow_none=True)
    task_id = fields.Integer(allow_none=True)
    link = fields.Function(lambda m: f"/tasks/{m.task_id}" if m.task_id else
                           (f"/instances/{m.instance_id}" if m.instance_id else None))
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)
    read = fields.Function(lambda m: m.read_at is not None)


class MessageListSchema(Schema):
    items = fields.List(fields.Nested(MessageSchema))
    total = fields.Integer()
    unread = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class ReadAllSchema(Schema):
    marked = fields.Integer()
    unread = fields.Integer()


class ChannelChoiceSchema(Schema):
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)))
    digest = fields.Boolean()
    email = fields.Email(allow_none=True)
    mobile = fields.String(allow_none=True, validate=validate.Regexp(r"^\+?\d{5,20}$", error="手机号格式不正确"))
    wecom_user_id = fields.String(allow_none=True, validate=validate.Length(max=64))
    available = fields.Function(lambda _: channels.configured(current_app.config), dump_only=True)
    # A chosen address of one's own is used only once verified with the code sent there.
    email_verified = fields.Function(lambda pref: services.is_verified(pref, current_user, "mail"), dump_only=True)
    wecom_user_id_verified = fields.Function(lambda pref: services.is_verified(pref, current_user, "wecom_app"),
                                             dump_only=True)


class VerifyAddressSchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(("mail", "wecom_app")))
    code = fields.String(required=True, validate=validate.Regexp(r"^\s*\d{6}\s*$", error="验证码为 6 位数字"))


@blp.route("/messages")
@login_required
@blp.arguments(MessageQuerySchema, location="query")
@blp.response(200, MessageListSchema)
def list_messages(args):
    items, total = services.list_messages(current_user, args["unread"], args["page"], args["page_size"])
    return {"items": items, "total": total, "unread": services.unread_count(current_user), "page": args["page"],
            "page_size": args["page_size"]}


@blp.route("/messages/<int:message_id>/read", methods=["POST"])
@login_required
@blp.response(200, MessageSchema)
def read(message_id):
    return services.mark_read(current_user, message_id)


@blp.route("/messages/read-all", methods=["POST"])
@login_required
@blp.response(200, ReadAllSchema)
def read_all():
    return {"marked": services.mark_all_read(current_user), "unread": 0}


@blp.route("/me/channels")
@login_required
@blp.response(200, ChannelChoiceSchema)
def get_channels():
    return services.preference(current_user)


@blp.route("/me/channels", methods=["PUT"])
@login_required
@blp.arguments(ChannelChoiceSchema)
@blp.response(200, ChannelChoiceSchema)
def put_channels(args):
    return services.set_preference(current_user, args)


@blp.route("/me/channels/verify", methods=["POST"])
@login_required
@blp.arguments(VerifyAddressSchema)
@blp.response(200, ChannelChoiceSchema)
def verify_channel_address(args):
    """Confirm a new e-mail address or WeCom account with the code the hall sent there."""
    return services.verify_address(current_user, args["channel"], args["code"])
