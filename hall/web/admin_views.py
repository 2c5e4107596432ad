"""Administrator pages: processes and the BPMN modeler, the form editor, users, roles and org units.

Every page needs the admin role (others get the 403 page). The modeler and the form editor talk to the JSON
API (validate, deploy, versions) from static scripts; the rest are plain server-rendered forms.
"""

from __future__ import annotations

import json
from functools import wraps
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from jsonschema import Draft202012Validator, SchemaError

from hall import jsontext
from hall.accounts import services as accounts
from hall.accounts.models import User
from hall.engine.validation import schema_problem
from hall.errors import Forbidden, HallError, Invalid, NotFound
from hall.extensions import db
from hall.org import services as org
from hall.org.models import UNIT_KINDS, OrgUnit
from hall.processes import services as processes
from hall.processes.models import ProcessDefinition
from hall.web import forms
from hall.web.args import int_arg, page_arg
from hall.web.views import _check_csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(_check_csrf)  # the same per-session token as the other pages

PAGE_SIZE = 20
UNIT_KIND_LABELS = {"college": _l("学校"), "department": _l("院系/部门"), "office": _l("教研室/科室"),
                    "class": _l("班级")}


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            raise Forbidden(_("只有系统管理员可以访问此页面"))
        return view(*args, **kwargs)

    return wrapped


@bp.route("/")
@admin_required
def index():
    return redirect(url_for("admin.process_list"))


# -- processes and the modeler -----------------------------------------------------------------------

@bp.route("/processes")
@admin_required
def process_list():
    definitions = processes.list_definitions()
    rows = [(d, processes.list_versions(d.key)) for d in definitions]
    return render_template("admin/processes.html", rows=rows)


@bp.route("/processes/<key>/<any(disable, enable):action>", methods=["POST"])
@admin_required
def process_enabled(key, action):
    """停用 takes a process off the catalogue (no new starts, running instances go on); 启用 puts it back."""
    definition = processes.set_definition_enabled(key, action == "enable", current_user)
    flash(_("已启用流程「%(name)s」", name=definition.name) if definition.enabled
          else _("已停用流程「%(name)s」：已从办事中移除，进行中的办件照常办理", name=definition.name), "ok")
    return redirect(url_for("admin.process_list"))


@bp.route("/modeler")
@admin_required
def modeler():
    key = request.args.get("key", "").strip()
    version = int_arg("version")
    bpmn_url = None
    if key:
        versions = processes.list_versions(key)  # 404 page for an unknown key
        number = version or max((v.number for v in versions), default=None)
        if number is None:
            raise NotFound(_("流程 %(key)s 没有版本", key=key))
        processes.get_version(key, number)
        bpmn_url = url_for("processes.version_bpmn", key=key, number=number)
        version = number
    return render_template("admin/modeler.html", key=key, version=version, bpmn_url=bpmn_url,
                           form_names=sorted(_known_forms()))


# -- forms -------------------------------------------------------------------------------------------

def _known_forms() -> dict[str, dict]:
    """Forms by file name: those of the forms folder, overridden by those of the latest deployed versions.
    Each entry: {"schema", "source"} where source names the process or says 表单目录."""
    found: dict[str, dict] = {}
    folder = Path(current_app.config["FORMS_DIR"])
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                found[path.name] = {"schema": json.loads(path.read_text(encoding="utf-8")), "source": _("表单目录")}
            except ValueError:
                continue
    definitions = db.session.scalars(sa.select(ProcessDefinition).order_by(ProcessDefinition.key))
    for definition in definitions:
        version = definition.latest_version
        for name, schema in ((version.forms or {}) if version else {}).items():
            found[name] = {"schema": schema, "source": _("%(name)s（%(key)s v%(number)s）", name=definition.name,
                                                           key=definition.key, number=version.number)}
    return found


@bp.route("/forms")
@admin_required
def form_list():
    known = _known_forms()
    return render_template("admin/forms.html", forms=sorted(known.items()))


@bp.route("/forms/file")
@admin_required
def form_file():
    """One form's JSON by file name (the modeler sends the forms a diagram names along with it)."""
    name = request.args.get("name", "")
    entry = _known_forms().get(name)
    if entry is None:
        return jsonify({"code": 404, "status": "Not Found", "message": f"表单 {name} 不存在"}), 404
    return jsonify(entry["schema"])


@bp.route("/forms/edit")
@admin_required
def form_edit():
    name = request.args.get("name", "").strip()
    entry = _known_forms().get(name) if name else None
    schema = entry["schema"] if entry else {
        "type": "object", "title": "新表单", "required": ["title"],
        "properties": {"title": {"type": "string", "title": "标题", "maxLength": 100}},
    }
    return render_template("admin/form_edit.html", name=name or "new_form.json", source=entry and entry["source"],
                           text=json.dumps(schema, ensure_ascii=False, indent=2))


@bp.route("/forms/preview", methods=["POST"])
@admin_required
def form_preview():
    """The form drawn from the posted schema text, as an HTML fragment; a bad schema answers 422 with why."""
    try:
        schema = json.loads(request.form.get("schema", ""))
        ui_text = request.form.get("ui_schema", "").strip()
        ui_schema = json.loads(ui_text) if ui_text else None
    except ValueError as err:
        return render_template("admin/_preview_error.html",
                               message=_("JSON 格式错误：%(error)s", error=jsontext.problem(err))), 422
    if not isinstance(schema, dict):
        return render_template("admin/_preview_error.html", message=_("表单必须是一个 JSON 对象")), 422
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        message = _("不是有效的 JSON Schema：%(error)s", error=schema_problem(err))
        return render_template("admin/_preview_error.html", message=message), 422
    try:
        fields = forms.build_fields(schema, ui_schema, {}, None)
    except (TypeError, KeyError, ValueError, AttributeError) as err:
        return render_template("admin/_preview_error.html", message=_("无法绘制此表单：%(error)s", error=err)), 422
    return render_template("admin/_preview.html", schema=schema, fields=fields)


# -- users -------------------------------------------------------------------------------------------

@bp.route("/users")
@admin_required
def user_list():
    q = request.args.get("q", "").strip()
    page = page_arg()
    return _users_page(q, page, {}, {})


def _users_page(q: str, page: int, errors: dict, form, status: int = 200):
    items, total = accounts.list_users(page, q or None, PAGE_SIZE)
    roles = accounts.list_roles()
    return render_template("admin/users.html", items=items, total=total, q=q, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), roles=roles,
                           role_names={r.code: r.name for r in roles}, units=org.list_units(),
                           errors=errors, form=form), status


@bp.route("/users", methods=["POST"])
@admin_required
def user_create():
    form = request.form
    role, unit_code = form.get("role", "").strip(), form.get("unit", "").strip()
    errors: dict[str, list[str]] = {}
    unit = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == unit_code)) if unit_code else None
    if unit_code and unit is None:
        errors["unit"] = [_("单位不存在")]
    try:
        if errors:  # the unit is wrong: still report every other field's problem at once
            errors.update(accounts.user_field_errors(
                username=form.get("username", "").strip(), name=form.get("name", "").strip(),
                email=form.get("email", "").strip(), phone=form.get("phone", "").strip(),
                password=form.get("password", ""), check=("username", "name", "email", "phone", "password")))
        else:
            user = accounts.register_user(
                current_user, form.get("username", ""), form.get("name", ""), form.get("password", ""),
                form.get("email"), form.get("phone"), org_unit_id=unit.id if unit else None,
                roles=[(role, unit.id if unit and form.get("scope") == "unit" else None)] if role else [])
    except HallError as err:
        db.session.rollback()
        errors = err.errors if isinstance(err.errors, dict) else {"username": [err.message]}
    if errors:
        return _users_page("", 1, errors, form, 422)
    flash(_("已创建用户 %(username)s", username=user.username), "ok")
    return redirect(url_for("admin.user_list", q=user.username))


@bp.route("/users/<int:user_id>/<any(deactivate, activate):action>", methods=["POST"])
@admin_required
def user_active(user_id, action):
    user = db.session.get(User, user_id)
    if user is not None and user.id == current_user.id and action == "deactivate":
        flash(_("不能停用自己的账号"), "error")
    else:
        user = accounts.set_user_active(user_id, action == "activate", actor=current_user)
        flash((_("已启用用户 %(username)s", username=user.username) if user.active
               else _("已停用用户 %(username)s", username=user.username)), "ok")
    return redirect(url_for("admin.user_list", q=request.form.get("q", ""), page=request.form.get("page", 1)))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user_edit(user_id):
    """Edit a person's name, email, phone and state; the password reset is a form of its own."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("用户不存在"))
    errors, form = {}, {}
    if request.method == "POST":
        form = request.form
        try:
            accounts.update_user(current_user, user_id, name=form.get("name"), email=form.get("email"),
                                 phone=form.get("phone"), active=form.get("active") == "1",
                                 fields=("name", "email", "phone", "active"))
        except Invalid as err:
            db.session.rollback()
            errors = err.errors or {"name": [err.message]}
        else:
            flash(_("已保存用户 %(username)s", username=user.username), "ok")
            return redirect(url_for("admin.user_edit", user_id=user_id))
    return _user_edit_page(user, errors, form, {}, 422 if errors else 200)


def _user_edit_page(user: User, errors: dict, form, password_errors: dict, status: int,
                    role_errors: dict | None = None):
    roles = accounts.list_roles()
    return render_template("admin/user_edit.html", user=user, errors=errors, form=form,
                           password_errors=password_errors, role_errors=role_errors or {}, roles=roles,
                           role_names={r.code: r.name for r in roles}, units=org.list_units()), status


@bp.route("/users/<int:user_id>/roles", methods=["POST"])
@admin_required
def user_role_add(user_id):
    """Give the person a role, in a unit or college-wide."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("用户不存在"))
    unit_code = request.form.get("unit", "").strip()
    unit = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == unit_code)) if unit_code else None
    try:
        if unit_code and unit is None:
            raise Invalid(_("单位不存在"), errors={"unit": [_("单位不存在")]})
        accounts.add_membership(current_user, user_id, request.form.get("role", "").strip(),
                                unit.id if unit else None)
    except Invalid as err:
        db.session.rollback()
        return _user_edit_page(user, {}, {}, {}, 422, role_errors=err.errors or {"role": [err.message]})
    flash(_("已为 %(username)s 添加角色", username=user.username), "ok")
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.route("/users/<int:user_id>/roles/<int:membership_id>/delete", methods=["POST"])
@admin_required
def user_role_remove(user_id, membership_id):
    """Take a role away from the person."""
    try:
        user = accounts.remove_membership(current_user, user_id, membership_id)
    except HallError as err:
        db.session.rollback()
        flash(err.message, "error")
    else:
        flash(_("已移除 %(username)s 的一个角色", username=user.username), "ok")
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@admin_required
def user_password(user_id):
    """An administrator sets a new password for the person."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("用户不存在"))
    try:
        accounts.reset_password(current_user, user_id, request.form.get("password", ""))
    except Invalid as err:
        db.session.rollback()
        return _user_edit_page(user, {}, {}, err.errors or {"password": [err.message]}, 422)
    flash(_("已重置用户 %(username)s 的密码", username=user.username), "ok")
    return redirect(url_for("admin.user_edit", user_id=user_id))


# -- roles -------------------------------------------------------------------------------------------

@bp.route("/roles", methods=["GET", "POST"])
@admin_required
def role_list():
    errors, status = {}, 200
    if request.method == "POST":
        try:
            role = accounts.create_role(request.form.get("code", ""), request.form.get("name", ""))
        except Invalid as err:
            db.session.rollback()
            errors, status = err.errors or {"code": [err.message]}, 422
        except HallError as err:
            db.session.rollback()
            errors, status = {"code": [err.message]}, err.code
        else:
            flash(_("已创建角色 %(name)s（%(code)s）", name=role.name, code=role.code), "ok")
            return redirect(url_for("admin.role_list"))
    counts = dict(db.session.execute(sa.text(
        "SELECT role_code, COUNT(DISTINCT user_id) FROM memberships GROUP BY role_code")).all())
    return render_template("admin/roles.html", roles=accounts.list_roles(), counts=counts, errors=errors,
                           form=request.form), status


# -- org units ---------------------------------------------------------------------------------------

@bp.route("/org-units", methods=["GET", "POST"])
@admin_required
def unit_list():
    errors, status = {}, 200
    if request.method == "POST":
        form = request.form
        code, name, kind = form.get("code", "").strip(), form.get("name", "").strip(), form.get("kind", "")
        parent_code = form.get("parent", "").strip()
        if not code:
            errors["code"] = [_("请填写单位编码")]
        if not name:
            errors["name"] = [_("请填写单位名称")]
        parent = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == parent_code)) if parent_code else None
        if parent_code and parent is None:
            errors["parent"] = [_("上级单位不存在")]
        if not errors:
            try:
                org.create_unit(code, name, kind, parent)
                db.session.commit()
            except HallError as err:
                db.session.rollback()
                errors["kind" if err.code == 422 else "code"] = [err.message]
        if errors:
            status = 422
        else:
            flash(_("已创建单位 %(name)s", name=name), "ok")
            return redirect(url_for("admin.unit_list"))
    units = org.list_units()
    return render_template("admin/org_units.html", units=units, kinds=UNIT_KINDS, kind_labels=UNIT_KIND_LABELS,
                           errors=errors, form=request.form), status
