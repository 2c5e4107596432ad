"""/api/v1 endpoints of the quality domain (cycles): open a round of the big loop and follow its progress."""

from flask_login import current_user, login_required
from marshmallow import Schema, validate

from hall import fields
from hall.extensions import Blueprint
from hall.processes.schemas import PageArgs
from hall.quality import cycles
from hall.quality import operators as _operators  # noqa: F401 - registers the diagnosis process's operators
from hall.quality.models import CYCLE_STEPS

blp = Blueprint("cycles", __name__, url_prefix="/api/v1", description="Quality: cycles")


class OpenCycleSchema(Schema):
    # Checked by the service (all problems reported together, in Chinese); only the shape is checked here.
    level = fields.String(required=True)
    period = fields.String(required=True)
    scope = fields.Raw(load_default=None, allow_none=True)
    deadlines = fields.Raw(load_default=None, allow_none=True)
    period_end = fields.Raw(load_default=None, allow_none=True)


class CycleSchema(Schema):
    id = fields.Integer()
    level = fields.String(attribute="level_code")
    period = fields.String()
    title = fields.String()
    definition = fields.String(attribute="definition_key")
    state = fields.String()
    scope = fields.Raw()
    deadlines = fields.Raw()
    period_end = fields.Date(allow_none=True)
    total = fields.Integer()
    opened = fields.Integer()
    error = fields.String(allow_none=True)
    created_by = fields.Integer(attribute="created_by_id", allow_none=True)
    created_at = fields.DateTime()


class CycleQuerySchema(PageArgs):
    level = fields.String(load_default=None)


class CycleListSchema(Schema):
    items = fields.List(fields.Nested(CycleSchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class ProgressQuerySchema(PageArgs):
    step = fields.String(load_default=None, validate=validate.OneOf([c for c, _ in CYCLE_STEPS] + ["done"]))


class UnitSchema(Schema):
    subject_id = fields.Integer()
    subject_code = fields.String()
    subject_name = fields.String()
    org_unit = fields.Integer(allow_none=True)
    instance_id = fields.Integer(allow_none=True)
    step = fields.String()
    step_name = fields.String()
    element = fields.String(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()
    grade = fields.String(allow_none=True)


class UnitPageSchema(Schema):
    items = fields.List(fields.Nested(UnitSchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class DepartmentSchema(Schema):
    org_unit = fields.Integer(allow_none=True)
    name = fields.String()
    total = fields.Integer()
    by_step = fields.Dict(keys=fields.String(), values=fields.Integer())


class OverdueSchema(Schema):
    count = fields.Integer()
    items = fields.List(fields.Nested(UnitSchema))


class ProgressSchema(Schema):
    cycle = fields.Nested(CycleSchema)
    total = fields.Integer()
    opened = fields.Integer()
    state = fields.String()
    by_step = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_department = fields.List(fields.Nested(DepartmentSchema))
    by_subject = fields.Nested(UnitPageSchema)
    overdue = fields.Nested(OverdueSchema)
    open_warnings = fields.Dict(keys=fields.String(), values=fields.Integer())


@blp.route("/cycles", methods=["POST"])
@login_required
@blp.arguments(OpenCycleSchema)
@blp.response(202, CycleSchema)
def open_cycle(args):
    """Open a cycle for a level and period (quality office); the diagnosis processes start in the background."""
    return cycles.open_cycle(args["level"], args["period"], current_user, scope=args["scope"],
                             deadlines=args["deadlines"], period_end=args["period_end"])


@blp.route("/cycles", methods=["GET"])
@login_required
@blp.arguments(CycleQuerySchema, location="query")
@blp.response(200, CycleListSchema)
def list_cycles(args):
    items, total = cycles.list_cycles(args["level"], args["page"], args["page_size"])
    return {"items": items, "total": total, "page": args["page"], "page_size": args["page_size"]}


@blp.route("/cycles/<int:cycle_id>", methods=["GET"])
@login_required
@blp.response(200, CycleSchema)
def get_cycle(cycle_id):
    return cycles.get_cycle(cycle_id)


@blp.route("/cycles/<int:cycle_id>/progress", methods=["GET"])
@login_required
@blp.arguments(ProgressQuerySchema, location="query")
@blp.response(200, ProgressSchema)
def progress(args, cycle_id):
    """Counts by step and department, units (paginated), overdue steps and open warnings; each person sees
    the subjects they may see (quality office all, a head their departments', others their own)."""
    return cycles.cycle_progress(cycle_id, current_user, args["page"], args["page_size"], args["step"])
