"""Marshmallow schemas of process definitions and instances."""

from marshmallow import Schema, validate

from hall import fields
from hall.processes.services import outcome_in

STATES = ("running", "suspended", "completed", "terminated", "error")


# Beyond this a page number is refused (its offset would overflow the database's integers long before).
MAX_PAGE = 1_000_000


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))


class DefinitionSchema(Schema):
    key = fields.String()
    name = fields.String()
    category = fields.String()
    description = fields.String()
    expected_days = fields.Integer(allow_none=True)
    startable_by = fields.List(fields.String())
    in_catalogue = fields.Boolean()
    enabled = fields.Boolean()
    latest_version = fields.Function(lambda d: d.latest_version.number if d.latest_version else None)


class VersionSchema(Schema):
    id = fields.Integer()
    key = fields.Function(lambda v: v.definition.key)
    number = fields.Integer()
    content_hash = fields.String()
    bpmn_filename = fields.String()
    forms = fields.Function(lambda v: sorted((v.forms or {}).keys()))
    deployed_by = fields.Function(lambda v: v.deployed_by_id)
    deployed_at = fields.DateTime()


class DeployResultSchema(VersionSchema):
    created = fields.Boolean()


class StartSchema(Schema):
    definition = fields.String(required=True)
    data = fields.Dict(load_default=dict)
    org_unit = fields.Integer(allow_none=True, load_default=None)
    subject = fields.Integer(allow_none=True, load_default=None)
    title = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))


class InstanceQuerySchema(PageArgs):
    definition = fields.String()
    state = fields.String(validate=validate.OneOf(STATES))
    starter = fields.String()
    org_unit = fields.Integer()
    since = fields.DateTime()
    until = fields.DateTime()


class EventSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    task_id = fields.Integer(allow_none=True)
    element_id = fields.String(allow_none=True)
    actor = fields.Function(lambda e: e.actor.username if e.actor else None)
    actor_name = fields.Function(lambda e: e.actor.name if e.actor else None)
    at = fields.DateTime()
    data = fields.Raw(allow_none=True)


class InstanceSummarySchema(Schema):
    id = fields.Integer()
    title = fields.String()
    definition = fields.Function(lambda i: i.definition.key)
    definition_name = fields.Function(lambda i: i.definition.name)
    version = fields.Function(lambda i: i.process_version.number)
    state = fields.String()
    starter = fields.Function(lambda i: i.starter.username if i.starter else None)
    org_unit = fields.Integer(attribute="org_unit_id", allow_none=True)
    subject = fields.Integer(attribute="subject_id", allow_none=True)
    current_elements = fields.List(fields.String())
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    error_message = fields.String(allow_none=True)
    error_element = fields.String(allow_none=True)


class InstanceTaskSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    element_id = fields.String()
    kind = fields.String()
    state = fields.String()
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None)
    completed_by = fields.Function(lambda t: t.completed_by.username if t.completed_by else None)
    completed_at = fields.DateTime(allow_none=True)
    submitted = fields.Raw(allow_none=True)


def _outcome(instance) -> dict | None:
    found = outcome_in(instance.history)
    return {"value": found["outcome"], "label": found["outcome_label"]} if found else None


class InstanceDetailSchema(InstanceSummarySchema):
    # A finished instance's result, where its diagram names one (outcomeVariable / outcomeLabels).
    outcome = fields.Function(_outcome, metadata={"description": "{value, label}, e.g. reject / 不同意; or null"})
    completed_elements = fields.List(fields.String())
    history = fields.List(fields.Nested(EventSchema))
    tasks = fields.List(fields.Nested(InstanceTaskSchema))


class InstanceListSchema(Schema):
    items = fields.List(fields.Nested(InstanceSummarySchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class RetrySchema(Schema):
    data = fields.Dict(load_default=dict)


class TerminateSchema(Schema):
    reason = fields.String(load_default=None, allow_none=True)
