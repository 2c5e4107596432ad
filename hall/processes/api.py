"""/api/v1/process-definitions, /process-instances and /services."""

from __future__ import annotations

import json

from flask import Response, request
from flask_login import current_user, login_required

from hall import jsontext
from hall.errors import Forbidden, Invalid
from hall.extensions import Blueprint
from hall.processes import services
from hall.processes.schemas import (
    DefinitionSchema,
    DeployResultSchema,
    EventSchema,
    InstanceDetailSchema,
    InstanceListSchema,
    InstanceQuerySchema,
    RetrySchema,
    StartSchema,
    TerminateSchema,
    VersionSchema,
)

blp = Blueprint("processes", __name__, url_prefix="/api/v1", description="Process definitions and instances")


@blp.route("/process-definitions", methods=["GET"])
@login_required
@blp.response(200, DefinitionSchema(many=True))
def list_definitions():
    return services.list_definitions()


@blp.route("/process-definitions", methods=["POST"])
@login_required
@blp.response(201, DeployResultSchema)
def deploy():
    """Deploy (multipart): one or more .bpmn files (the first holds the process) and the .json forms they use."""
    if not current_user.is_admin:
        raise Forbidden("只有系统管理员可以部署流程")
    files, forms = _uploads()
    version, created = services.deploy(files, forms, current_user, request.form.get("main") or None)
    version.created = created  # transient, for the schema; @blp.response dumps the object itself
    return version, 201 if created else 200


@blp.route("/process-definitions/validate", methods=["POST"])
@login_required
def validate():
    """Check a diagram like deploy does (multipart, same fields) without storing it: 200 with the problems."""
    if not current_user.is_admin:
        raise Forbidden("只有系统管理员可以校验流程")
    files, forms = _uploads()
    return services.validate(files, forms, request.form.get("main") or None)


def _uploads() -> tuple[dict[str, bytes], dict[str, dict]]:
    """The .bpmn files and .json forms of a multipart deploy or validate request."""
    files, forms = {}, {}
    for upload in request.files.getlist("file") + request.files.getlist("files") + request.files.getlist("forms"):
        name = upload.filename or ""
        content = upload.read()
        if name.endswith(".bpmn") or name.endswith(".xml"):
            files[name] = content
        elif name.endswith(".json"):
            try:
                forms[name] = json.loads(content)
            except ValueError as err:
                reason = jsontext.problem(err)
                raise Invalid(f"表单文件 {name} 不是有效的 JSON：{reason}",
                              errors=[{"file": name, "element": "", "reason": f"无效 JSON：{reason}"}]) from None
        else:
            raise Invalid(f"不支持的文件 {name}：只接受 .bpmn 和 .json",
                          errors=[{"file": name, "element": "", "reason": "文件类型"}])
    if not files:
        raise Invalid("请上传 BPMN 文件（字段名 file）", errors={"file": ["缺少 .bpmn 文件"]})
    return files, forms


@blp.route("/process-definitions/<key>/<any(disable, enable):action>", methods=["POST"])
@login_required
@blp.response(200, DefinitionSchema)
def set_enabled(key, action):
    """停用 (disable): off the catalogue, no new starts, running instances go on; 启用 (enable) puts it back."""
    return services.set_definition_enabled(key, action == "enable", current_user)


@blp.route("/process-definitions/<key>/versions")
@login_required
@blp.response(200, VersionSchema(many=True))
def versions(key):
    return services.list_versions(key)


@blp.route("/process-definitions/<key>/versions/<int:number>/bpmn")
@login_required
def version_bpmn(key, number):
    version = services.get_version(key, number)
    return Response(version.bpmn_xml, mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{version.bpmn_filename}"'})


@blp.route("/services")
@login_required
@blp.response(200, DefinitionSchema(many=True))
def catalogue():
    """The service catalogue: definitions the current user may start."""
    return services.catalogue(current_user, request.args.get("q"))


@blp.route("/process-instances", methods=["POST"])
@login_required
@blp.arguments(StartSchema)
@blp.response(201, InstanceDetailSchema)
def start(args):
    instance = services.start_instance(args["definition"], current_user, args["data"], args["org_unit"],
                                       args["subject"], args["title"])
    return _detail(instance)


@blp.route("/process-instances", methods=["GET"])
@login_required
@blp.arguments(InstanceQuerySchema, location="query")
@blp.response(200, InstanceListSchema)
def list_instances(args):
    items, total = services.list_instances(current_user, **args)
    return {"items": items, "total": total, "page": args["page"], "page_size": args["page_size"]}


@blp.route("/process-instances/<int:instance_id>")
@login_required
@blp.response(200, InstanceDetailSchema)
def detail(instance_id):
    return _detail(services.get_instance(instance_id, current_user))


def _detail(instance):
    # Transient attributes for the schema; the ORM does not persist them. A start kept what it wrote
    # (`written`, used once: the object may be read again later in the same session).
    written = instance.__dict__.pop("written", None)
    instance.history, instance.tasks = written or (services.instance_history(instance),
                                                   services.instance_tasks(instance))
    return instance


@blp.route("/process-instances/<int:instance_id>/suspend", methods=["POST"])
@login_required
@blp.response(200, InstanceDetailSchema)
def suspend(instance_id):
    return _detail(services.suspend_instance(instance_id, current_user))


@blp.route("/process-instances/<int:instance_id>/resume", methods=["POST"])
@login_required
@blp.response(200, InstanceDetailSchema)
def resume(instance_id):
    return _detail(services.resume_instance(instance_id, current_user))


@blp.route("/process-instances/<int:instance_id>/terminate", methods=["POST"])
@login_required
@blp.arguments(TerminateSchema)
@blp.response(200, InstanceDetailSchema)
def terminate(args, instance_id):
    return _detail(services.terminate_instance(instance_id, current_user, args.get("reason")))


@blp.route("/process-instances/<int:instance_id>/retry", methods=["POST"])
@login_required
@blp.arguments(RetrySchema)
@blp.response(200, InstanceDetailSchema)
def retry(args, instance_id):
    return _detail(services.retry_instance(instance_id, current_user, args["data"]))


@blp.route("/process-instances/<int:instance_id>/withdraw", methods=["POST"])
@login_required
@blp.response(200, InstanceDetailSchema)
def withdraw(instance_id):
    return _detail(services.withdraw_instance(instance_id, current_user))


@blp.route("/process-instances/<int:instance_id>/urge", methods=["POST"])
@login_required
@blp.response(201, EventSchema)
def urge(instance_id):
    return services.urge_instance(instance_id, current_user)
