"""Marshmallow schemas of human tasks."""

from datetime import UTC

from marshmallow import Schema, validate

from hall import fields
from hall.processes.schemas import PageArgs


class TaskQuerySchema(PageArgs):
    view = fields.String(load_default="open", validate=validate.OneOf(("open", "mine", "candidate", "completed")))
    sort = fields.String(load_default="created", validate=validate.OneOf(("created", "due")))


class TaskSchema(Schema):
    id = fields.Integer()
    instance_id = fields.Integer()
    instance_title = fields.Function(lambda t: t.instance.title)
    definition = fields.Function(lambda t: t.instance.definition.key)
    element_id = fields.String()
    name = fields.String()
    kind = fields.String()
    lane = fields.String(allow_none=True)
    state = fields.String()
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None)
    version = fields.Integer()
    due_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    completed_by = fields.Function(lambda t: t.completed_by.username if t.completed_by else None)
    completed_at = fields.DateTime(allow_none=True)
    parent_task_id = fields.Integer(allow_none=True)

    def dump(self, obj, *, many: bool | None = None):
        """The plain TaskSchema (every task list and every task action's answer) is written by hand:
        marshmallow's generic path costs ~0.14 ms per task on the benchmark VM, as much as a page of the
        inbox's SQL. Subclasses and `only`/`exclude` take the generic path. tests/test_task_schema.py holds
        the two equal on ORM tasks and on the Core rows of the submit path."""
        if type(self) is not TaskSchema or self.only or self.exclude:
            return super().dump(obj, many=many)
        if self.many if many is None else many:
            return [_task_dict(item) for item in obj]
        return _task_dict(obj)


def _task_dict(t) -> dict:
    # Field by field what TaskSchema's fields give, in their order (Integer: int, String: str, DateTime: ISO).
    assignee, completed_by = t.assignee, t.completed_by
    return {
        "id": _int(t.id), "instance_id": _int(t.instance_id), "instance_title": t.instance.title,
        "definition": t.instance.definition.key, "element_id": _str(t.element_id), "name": _str(t.name),
        "kind": _str(t.kind), "lane": _str(t.lane), "state": _str(t.state),
        "assignee": assignee.username if assignee else None, "version": _int(t.version),
        "due_at": _iso(t.due_at), "created_at": _iso(t.created_at),
        "completed_by": completed_by.username if completed_by else None,
        "completed_at": _iso(t.completed_at), "parent_task_id": _int(t.parent_task_id),
    }


def _int(value):
    return None if value is None else int(value)


def _str(value):
    return None if value is None else str(value)


def _iso(value):
    return None if value is None else value.isoformat()


class TaskDetailSchema(TaskSchema):
    form = fields.Raw(allow_none=True)
    ui_schema = fields.Raw(allow_none=True)
    data = fields.Raw()
    draft = fields.Raw(allow_none=True)
    submitted = fields.Raw(allow_none=True)
    can_act = fields.Boolean()
    can_return = fields.Boolean()


class TaskListSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class CompleteSchema(Schema):
    data = fields.Dict(load_default=dict)
    version = fields.Integer(required=True)


class DraftSchema(Schema):
    data = fields.Dict(required=True)


class ReturnSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    version = fields.Integer(load_default=None, allow_none=True)


class PersonSchema(Schema):
    username = fields.String(required=True)
    comment = fields.String(load_default=None, allow_none=True)
    due_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC)


class DelegateQuerySchema(Schema):
    q = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class DelegateSchema(Schema):
    """A person a task may be transferred to or asked to sign (active staff)."""

    username = fields.String()
    name = fields.String()
    org_unit = fields.Function(lambda u: u.org_unit.name if u.org_unit else None)


class CommentInSchema(Schema):
    body = fields.String(required=True)


class CommentSchema(Schema):
    id = fields.Integer()
    author = fields.Function(lambda c: c.author.username)
    author_name = fields.Function(lambda c: c.author.name)
    body = fields.String()
    at = fields.DateTime()


class AttachmentSchema(Schema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploader = fields.Function(lambda a: a.uploader.username)
    at = fields.DateTime()
