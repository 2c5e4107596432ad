"""The message-centre page (/messages) and the unread count shown in the header of every page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from hall.notifications import services
from hall.web.args import page_arg
from hall.web.views import _check_csrf

bp = Blueprint("messages_web", __name__)
bp.before_request(_check_csrf)  # the same per-session token as the other pages

PAGE_SIZE = 20


@bp.app_context_processor
def _unread_badge():
    # A function, not a number: only pages that render the header pay for the count query.
    def unread_messages() -> int:
        return services.unread_count(current_user) if current_user.is_authenticated else 0

    return {"unread_messages": unread_messages}


@bp.route("/messages")
@login_required
def message_list():
    unread_only = request.args.get("unread") == "1"
    page = page_arg()
    items, total = services.list_messages(current_user, unread_only, page, PAGE_SIZE)
    return render_template("messages.html", items=items, total=total, page=page, unread_only=unread_only,
                           unread=services.unread_count(current_user), pages=max(1, -(-total // PAGE_SIZE)))


@bp.route("/messages/<int:message_id>")
@login_required
def open_message(message_id):
    """Mark the message read and go to what it is about."""
    message = services.mark_read(current_user, message_id)
    if message.task_id:
        return redirect(url_for("web.task", task_id=message.task_id))
    if message.instance_id:
        return redirect(url_for("web.instance", instance_id=message.instance_id))
    return redirect(url_for("messages_web.message_list"))


@bp.route("/messages/read-all", methods=["POST"])
@login_required
def read_all():
    services.mark_all_read(current_user)
    return redirect(url_for("messages_web.message_list"))
