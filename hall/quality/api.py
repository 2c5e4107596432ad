"""/api/v1 endpoints of the quality domain: levels, subjects, standards, monitoring points, targets,
measurements, imports and warnings."""

from __future__ import annotations

from flask import request
from flask_login import current_user, login_required

from hall.accounts.tokens import require_scope
from hall.errors import Invalid
from hall.extensions import Blueprint
from hall.quality import imports, services
from hall.quality import warnings as quality_warnings  # noqa: F401 - registers the quality.* operators
from hall.quality.schemas import (
    EffectiveQuerySchema,
    EffectiveSchema,
    ImportResultSchema,
    LevelSchema,
    MeasurementBatchSchema,
    MeasurementResultSchema,
    OverrideInSchema,
    OverrideSchema,
    PointInSchema,
    PointQuerySchema,
    PointSchema,
    StandardInSchema,
    StandardQuerySchema,
    StandardSchema,
    SubjectInSchema,
    SubjectPageSchema,
    SubjectQuerySchema,
    SubjectSchema,
    TargetInSchema,
    TargetPageSchema,
    TargetQuerySchema,
    TargetSchema,
    WarningPageSchema,
    WarningQuerySchema,
    WarningSchema,
)

blp = Blueprint("quality", __name__, url_prefix="/api/v1",
                description="Quality: subjects, points, measurements, warnings")


def _page(items, total, args):
    return {"items": items, "total": total, "page": args["page"], "page_size": args["page_size"]}


@blp.route("/levels")
@login_required
@blp.response(200, LevelSchema(many=True))
def levels():
    return services.list_levels()


@blp.route("/subjects", methods=["GET"])
@login_required
@blp.arguments(SubjectQuerySchema, location="query")
@blp.response(200, SubjectPageSchema)
def list_subjects(args):
    items, total = services.list_subjects(current_user, **args)
    return _page(items, total, args)


@blp.route("/subjects", methods=["POST"])
@login_required
@blp.arguments(SubjectInSchema)
@blp.response(201, SubjectSchema)
def create_subject(args):
    return services.create_subject(current_user, **args)


@blp.route("/subjects/<int:subject_id>")
@login_required
@blp.response(200, SubjectSchema)
def get_subject(subject_id):
    return services.get_subject(subject_id, current_user)


@blp.route("/standards", methods=["GET"])
@login_required
@blp.arguments(StandardQuerySchema, location="query")
@blp.response(200, StandardSchema(many=True))
def list_standards(args):
    return services.list_standards(**args)


@blp.route("/standards", methods=["POST"])
@login_required
@blp.arguments(StandardInSchema)
@blp.response(201, StandardSchema)
def create_standard(args):
    return services.create_standard(current_user, **args)


@blp.route("/monitoring-points", methods=["GET"])
@login_required
@blp.arguments(PointQuerySchema, location="query")
@blp.response(200, PointSchema(many=True))
def list_points(args):
    return services.list_points(**args)


@blp.route("/monitoring-points", methods=["POST"])
@login_required
@blp.arguments(PointInSchema)
@blp.response(201, PointSchema)
def create_point(args):
    missing = [f for f in ("level", "element", "code", "name", "direction") if not args.get(f)]
    if missing:
        raise Invalid("质控点信息不完整", errors={f: ["必填"] for f in missing})
    return services.save_point(current_user, args)


@blp.route("/monitoring-points/<int:point_id>", methods=["GET"])
@login_required
@blp.response(200, PointSchema)
def get_point(point_id):
    return services.get_point(point_id)


@blp.route("/monitoring-points/<int:point_id>", methods=["PUT"])
@login_required
@blp.arguments(PointInSchema)
@blp.response(200, PointSchema)
def update_point(args, point_id):
    return services.save_point(current_user, args, point_id)


@blp.route("/monitoring-points/<int:point_id>/overrides/<int:subject_id>", methods=["PUT"])
@login_required
@blp.arguments(OverrideInSchema)
@blp.response(200, OverrideSchema)
def set_override(args, point_id, subject_id):
    return services.set_override(current_user, point_id, subject_id, args)


@blp.route("/monitoring-points/<int:point_id>/effective")
@login_required
@blp.arguments(EffectiveQuerySchema, location="query")
@blp.response(200, EffectiveSchema)
def effective(args, point_id):
    services.get_subject(args["subject"], current_user)
    return services.effective_lines(point_id, args["subject"])


@blp.route("/targets", methods=["GET"])
@login_required
@blp.arguments(TargetQuerySchema, location="query")
@blp.response(200, TargetPageSchema)
def list_targets(args):
    items, total = services.list_targets(current_user, **args)
    return _page(items, total, args)


@blp.route("/targets", methods=["POST"])
@login_required
@blp.arguments(TargetInSchema)
@blp.response(201, TargetSchema)
def create_target(args):
    return services.create_target(current_user, **args)


@blp.route("/measurements", methods=["POST"])
@require_scope("measurements:write")
@login_required
@blp.arguments(MeasurementBatchSchema)
@blp.response(201, MeasurementResultSchema)
def record_measurements(args):
    """Push a batch of measurements: validated as a whole, written all or nothing, idempotent per key."""
    services.require_manager(current_user, "提交监测数据")
    rows = [services.MeasurementRow(row=n, subject=item["subject"], level=item["level"], point=item["point"],
                                    period=item["period"], value=item["value"], source=item["source"])
            for n, item in enumerate(args["items"], start=1)]
    return services.record_measurements(rows, current_user, cycle_id=args["cycle"])


@blp.route("/imports", methods=["POST"])
@login_required
@blp.response(201, ImportResultSchema)
def import_file():
    """Import subjects or measurements (multipart: `file` .xlsx/.csv, `kind`, optional `cycle`)."""
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("请选择要导入的文件（字段名 file）", errors={"file": ["缺少文件"]})
    cycle = request.form.get("cycle") or None
    if cycle is not None and not cycle.isdigit():
        raise Invalid("诊改周期编号应为整数", errors={"cycle": ["应为整数"]})
    return imports.import_file(current_user, upload.filename, upload.read(), request.form.get("kind", ""),
                               int(cycle) if cycle else None)


@blp.route("/warnings")
@login_required
@blp.arguments(WarningQuerySchema, location="query")
@blp.response(200, WarningPageSchema)
def list_warnings(args):
    items, total = quality_warnings.list_warnings(current_user, **args)
    return _page(items, total, args)


@blp.route("/warnings/<int:warning_id>")
@login_required
@blp.response(200, WarningSchema)
def get_warning(warning_id):
    return quality_warnings.get_warning(warning_id, current_user)
