"""/api/v1/tasks: the inbox and the actions on a task."""

from __future__ import annotations

from flask import request, send_file
from flask_login import current_user, login_required

from hall.errors import Invalid
from hall.extensions import Blueprint
from hall.tasks import services
from hall.tasks.schemas import (
    AttachmentSchema,
    CommentInSchema,
    CommentSchema,
    CompleteSchema,
    DelegateQuerySchema,
    DelegateSchema,
    DraftSchema,
    PersonSchema,
    ReturnSchema,
    TaskDetailSchema,
    TaskListSchema,
    TaskQuerySchema,
    TaskSchema,
)

blp = Blueprint("tasks", __name__, url_prefix="/api/v1", description="Human tasks")


@blp.route("/tasks")
@login_required
@blp.arguments(TaskQuerySchema, location="query")
@blp.response(200, TaskListSchema)
def inbox(args):
    items, total = services.inbox(current_user, args["view"], args["page"], args["page_size"], args["sort"])
    return {"items": items, "total": total, "page": args["page"], "page_size": args["page_size"]}


def detail(task):
    # Transient attributes for the schema; the ORM does not persist them.
    task.form, task.ui_schema = services.form_of(task)
    task.data = services.task_data(task)
    task.can_act = task.state == "ready" and services.may_act(task, current_user)
    task.can_return = services.can_return(task)
    return task


@blp.route("/tasks/<int:task_id>")
@login_required
@blp.response(200, TaskDetailSchema)
def get(task_id):
    return detail(services.get_task(task_id, current_user))


@blp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@login_required
@blp.arguments(CompleteSchema)
@blp.response(200, TaskSchema)
def complete(args, task_id):
    return services.complete_task(task_id, current_user, args["data"], expected_version=args["version"])


@blp.route("/tasks/<int:task_id>/draft", methods=["PUT"])
@login_required
@blp.arguments(DraftSchema)
@blp.response(200, TaskDetailSchema)
def draft(args, task_id):
    return detail(services.save_draft(task_id, current_user, args["data"]))


@blp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@login_required
@blp.response(200, TaskSchema)
def claim(task_id):
    return services.claim_task(task_id, current_user)


@blp.route("/tasks/<int:task_id>/release", methods=["POST"])
@login_required
@blp.response(200, TaskSchema)
def release(task_id):
    return services.release_task(task_id, current_user)


@blp.route("/tasks/<int:task_id>/return", methods=["POST"])
@login_required
@blp.arguments(ReturnSchema)
@blp.response(200, TaskSchema)
def return_(args, task_id):
    return services.return_task(task_id, current_user, args["reason"], args["version"])


@blp.route("/tasks/<int:task_id>/transfer", methods=["POST"])
@login_required
@blp.arguments(PersonSchema)
@blp.response(200, TaskSchema)
def transfer(args, task_id):
    return services.transfer_task(task_id, current_user, args["username"], args["comment"], args["due_at"])


@blp.route("/tasks/<int:task_id>/add-signer", methods=["POST"])
@login_required
@blp.arguments(PersonSchema)
@blp.response(201, TaskSchema)
def add_signer(args, task_id):
    return services.add_signer(task_id, current_user, args["username"], args["comment"], args["due_at"])


@blp.route("/tasks/<int:task_id>/delegates")
@login_required
@blp.arguments(DelegateQuerySchema, location="query")
@blp.response(200, DelegateSchema(many=True))
def delegates(args, task_id):
    """Who this task may be transferred to or asked to sign (转办 / 加签): active staff, matching q."""
    return services.list_delegates(task_id, current_user, args["q"])


@blp.route("/tasks/<int:task_id>/comments", methods=["GET"])
@login_required
@blp.response(200, CommentSchema(many=True))
def comments(task_id):
    return services.list_comments(services.get_task(task_id, current_user))


@blp.route("/tasks/<int:task_id>/comments", methods=["POST"])
@login_required
@blp.arguments(CommentInSchema)
@blp.response(201, CommentSchema)
def comment(args, task_id):
    return services.add_comment(task_id, current_user, args["body"])


@blp.route("/tasks/<int:task_id>/attachments", methods=["GET"])
@login_required
@blp.response(200, AttachmentSchema(many=True))
def attachments(task_id):
    return services.list_attachments(services.get_task(task_id, current_user))


@blp.route("/tasks/<int:task_id>/attachments", methods=["POST"])
@login_required
@blp.response(201, AttachmentSchema)
def attach(task_id):
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("请选择要上传的文件（字段名 file）", errors={"file": ["缺少文件"]})
    return services.add_attachment(task_id, current_user, upload.filename, upload.stream)


@blp.route("/attachments/<int:attachment_id>")
@login_required
def download(attachment_id):
    attachment, path = services.attachment_file(attachment_id, current_user)
    return send_file(path, mimetype=attachment.content_type, as_attachment=True, download_name=attachment.filename)
