"""/api/v1 endpoints of the quality domain: portraits (画像) and reports (.docx / .xlsx downloads)."""

from __future__ import annotations

from flask import Response
from flask_login import current_user, login_required
from marshmallow import Schema, validate

from hall import fields
from hall.extensions import Blueprint
from hall.quality import portraits, reports
from hall.quality.models import LEVELS

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="Quality: portraits and reports")


class PortraitQuerySchema(Schema):
    org_unit = fields.Integer(metadata={"description": "org unit id; its whole subtree (default: your scope)"})
    parent = fields.Integer(metadata={"description": "subject id; aggregate over its children instead"})
    level = fields.String(validate=validate.OneOf(list(LEVELS)), metadata={"description": "one level only"})
    period = fields.String(validate=validate.Length(max=20), metadata={"description": "default: latest measured"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class PeriodQuerySchema(Schema):
    period = fields.String(validate=validate.Length(max=20),
                           metadata={"description": "default: the latest period with a cycle or measurements"})


@blp.route("/subjects/<int:subject_id>/portrait", methods=["GET"])
@login_required
@blp.response(200)
def subject_portrait(subject_id):
    """One subject's portrait: points with effective lines, values and states per period, warnings, radar
    scores of the latest period and children for the drill-down."""
    return portraits.subject_portrait(current_user, subject_id)


@blp.route("/portraits", methods=["GET"])
@login_required
@blp.arguments(PortraitQuerySchema, location="query")
@blp.response(200)
def aggregate_portraits(args):
    """Aggregates over an org unit (or a subject's children): subjects per unit and level, per point the
    mean/min/max and the subjects in each state, and the subjects of the next drill-down step."""
    return portraits.aggregate_portrait(current_user, org_unit_id=args.get("org_unit"), parent_id=args.get("parent"),
                                        level=args.get("level"), period=args.get("period"), page=args["page"],
                                        page_size=args["page_size"])


def _download(kind: str, data: dict, fmt: str) -> Response:
    response = Response(reports.render(kind, data, fmt), mimetype=reports.MIMETYPES[fmt])
    response.headers["Content-Disposition"] = reports.content_disposition(data, fmt)
    return response


@blp.route("/reports/self-diagnosis/<int:cycle_unit_id>.<any(docx, xlsx):fmt>", methods=["GET"])
@login_required
def self_diagnosis_report(cycle_unit_id, fmt):
    """A subject's 自我诊改报告 from its cycle unit, as .docx or .xlsx."""
    return _download("self-diagnosis", reports.self_diagnosis(current_user, cycle_unit_id), fmt)


@blp.route("/reports/department/<int:org_unit_id>.<any(docx, xlsx):fmt>", methods=["GET"])
@login_required
@blp.arguments(PeriodQuerySchema, location="query")
def department_report(args, org_unit_id, fmt):
    """A department's 年度质量报告 for a period, as .docx or .xlsx."""
    return _download("annual", reports.annual(current_user, org_unit_id, args.get("period")), fmt)


@blp.route("/reports/college.<any(docx, xlsx):fmt>", methods=["GET"])
@login_required
@blp.arguments(PeriodQuerySchema, location="query")
def college_report(args, fmt):
    """The college's 年度质量报告 for a period, as .docx or .xlsx."""
    return _download("annual", reports.annual(current_user, None, args.get("period")), fmt)
