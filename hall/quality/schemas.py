"""Marshmallow schemas of the quality domain's API: subjects, standards, points, targets, measurements,
warnings and imports."""

from marshmallow import Schema, validate

from hall import fields
from hall.processes.schemas import PageArgs
from hall.quality.models import DIRECTIONS, STANDARD_KINDS, SYSTEMS, WARNING_LEVELS, WARNING_STATES


def page_of(item_schema):
    """A paginated list: items, total, page, page_size."""
    return type(f"{item_schema.__name__.removesuffix('Schema')}PageSchema", (Schema,), {
        "items": fields.List(fields.Nested(item_schema)),
        "total": fields.Integer(),
        "page": fields.Integer(),
        "page_size": fields.Integer(),
    })


class LevelSchema(Schema):
    code = fields.String()
    name = fields.String()
    sort = fields.Integer()
    round_unit = fields.String()


# -- subjects ----------------------------------------------------------------------------------------

class SubjectQuerySchema(PageArgs):
    level = fields.String()
    org_unit = fields.Integer()
    parent = fields.Integer()
    q = fields.String()


class SubjectSchema(Schema):
    id = fields.Integer()
    level = fields.String(attribute="level_code")
    code = fields.String()
    name = fields.String()
    org_unit = fields.Integer(attribute="org_unit_id", allow_none=True)
    responsible = fields.Function(lambda s: s.responsible.username if s.responsible else None)
    responsible_name = fields.Function(lambda s: s.responsible.name if s.responsible else None)
    parent = fields.Integer(attribute="parent_id", allow_none=True)
    attributes = fields.Dict()
    active = fields.Boolean()


class SubjectInSchema(Schema):
    level = fields.String(required=True)
    code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    org_unit = fields.Integer(allow_none=True, load_default=None)
    responsible = fields.String(allow_none=True, load_default=None, metadata={"description": "负责人工号"})
    parent = fields.Integer(allow_none=True, load_default=None)
    attributes = fields.Dict(load_default=dict)


# -- standards ---------------------------------------------------------------------------------------

class StandardItemSchema(Schema):
    code = fields.String(required=True)
    text = fields.String(required=True)


class StandardQuerySchema(Schema):
    level = fields.String()
    kind = fields.String(validate=validate.OneOf(list(STANDARD_KINDS)))
    system = fields.String(validate=validate.OneOf(list(SYSTEMS)))


class StandardSchema(Schema):
    id = fields.Integer()
    level = fields.String(attribute="level_code", required=True)
    kind = fields.String(required=True, validate=validate.OneOf(list(STANDARD_KINDS)))
    system = fields.String(required=True, validate=validate.OneOf(list(SYSTEMS)))
    code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    items = fields.List(fields.Nested(StandardItemSchema), load_default=list)


class StandardInSchema(StandardSchema):
    level = fields.String(required=True)

    class Meta:
        exclude = ("id",)


# -- monitoring points -------------------------------------------------------------------------------

class PointQuerySchema(Schema):
    level = fields.String()
    q = fields.String()


class PointSchema(Schema):
    id = fields.Integer(dump_only=True)
    level = fields.String(attribute="level_code")
    element = fields.String(validate=validate.Length(min=1, max=100))
    code = fields.String(validate=validate.Length(min=1, max=64))
    name = fields.String(validate=validate.Length(min=1, max=200))
    unit = fields.String(validate=validate.Length(max=40))
    direction = fields.String(validate=validate.OneOf(list(DIRECTIONS)))
    target_value = fields.Float(allow_none=True)
    standard_value = fields.Float(allow_none=True)
    warning_value = fields.Float(allow_none=True)
    source = fields.String(validate=validate.Length(max=100))
    frequency = fields.String(validate=validate.Length(max=40))
    standard_id = fields.Integer(allow_none=True)
    is_example = fields.Boolean()
    note = fields.String()


class PointInSchema(PointSchema):
    """Creating needs level, element, code, name and direction; an update may send any subset."""

    level = fields.String()


class OverrideInSchema(Schema):
    target_value = fields.Float(allow_none=True)
    standard_value = fields.Float(allow_none=True)
    warning_value = fields.Float(allow_none=True)


class OverrideSchema(OverrideInSchema):
    id = fields.Integer()
    point = fields.Integer(attribute="point_id")
    subject = fields.Integer(attribute="subject_id")


class EffectiveQuerySchema(Schema):
    subject = fields.Integer(required=True)


class EffectiveSchema(Schema):
    point_id = fields.Integer()
    subject_id = fields.Integer()
    direction = fields.String()
    target_value = fields.Float(allow_none=True)
    standard_value = fields.Float(allow_none=True)
    warning_value = fields.Float(allow_none=True)
    overridden = fields.Boolean()


# -- targets -----------------------------------------------------------------------------------------

class TargetQuerySchema(PageArgs):
    subject = fields.Integer()
    period = fields.String()
    parent = fields.Integer()


class TargetSchema(Schema):
    id = fields.Integer()
    subject = fields.Integer(attribute="subject_id")
    period = fields.String()
    parent = fields.Integer(attribute="parent_id", allow_none=True)
    text = fields.String()
    point = fields.Integer(attribute="point_id", allow_none=True)
    target_value = fields.Float(allow_none=True)
    state = fields.String()
    origin = fields.String()


class TargetInSchema(Schema):
    subject = fields.Integer(required=True)
    period = fields.String(required=True)
    parent = fields.Integer(allow_none=True, load_default=None)
    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    point = fields.Integer(allow_none=True, load_default=None)
    target_value = fields.Float(allow_none=True, load_default=None)


# -- measurements ------------------------------------------------------------------------------------

class MeasurementInSchema(Schema):
    # The subject's id, or its code together with `level` (the point's level when omitted).
    subject = fields.Raw(required=True)
    level = fields.String(allow_none=True, load_default=None)
    point = fields.String(required=True, metadata={"description": "质控点编码"})
    period = fields.String(required=True)
    value = fields.Raw(required=True)
    source = fields.String(load_default="manual", validate=validate.Length(min=1, max=100))


class MeasurementBatchSchema(Schema):
    items = fields.List(fields.Nested(MeasurementInSchema), required=True, validate=validate.Length(min=1, max=10000))
    cycle = fields.Integer(allow_none=True, load_default=None)


class MeasurementResultSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    warnings_raised = fields.Integer()


class ImportResultSchema(MeasurementResultSchema):
    kind = fields.String()
    rows = fields.Integer()


# -- warnings ----------------------------------------------------------------------------------------

class WarningQuerySchema(PageArgs):
    state = fields.String(validate=validate.OneOf(list(WARNING_STATES)))
    level = fields.String(validate=validate.OneOf(list(WARNING_LEVELS)))
    subject = fields.Integer()
    point = fields.Integer()
    period = fields.String()
    org_unit = fields.Integer()


class WarningSchema(Schema):
    id = fields.Integer()
    point = fields.Integer(attribute="point_id")
    point_code = fields.Function(lambda w: w.point.code)
    point_name = fields.Function(lambda w: w.point.name)
    subject = fields.Integer(attribute="subject_id")
    subject_name = fields.Function(lambda w: w.subject.name)
    period = fields.String()
    level = fields.String()
    value = fields.Float()
    standard_value = fields.Float(allow_none=True)
    warning_value = fields.Float(allow_none=True)
    state = fields.String()
    assignee = fields.Integer(attribute="assignee_id", allow_none=True)
    instance = fields.Integer(attribute="instance_id", allow_none=True)
    raised_at = fields.DateTime()
    handled_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)


SubjectPageSchema = page_of(SubjectSchema)
TargetPageSchema = page_of(TargetSchema)
WarningPageSchema = page_of(WarningSchema)
