"""Pages. Views stay thin: they call the same services as the API and render the result."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from itertools import groupby
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from hall import security
from hall.accounts.models import Role
from hall.audit import services as audit
from hall.errors import Conflict, HallError, Invalid, PayloadTooLarge
from hall.extensions import db
from hall.fields import database_int
from hall.processes import registry
from hall.processes import services as processes
from hall.processes.models import ProcessVersion
from hall.tasks import services as tasks
from hall.tasks.assignment import lane_labels
from hall.web import forms
from hall.web.args import page_arg

bp = Blueprint("web", __name__)

PAGE_SIZE = 20
STATE_LABELS = {
    "running": _l("进行中"), "completed": _l("已办结"), "terminated": _l("已终止"), "suspended": _l("已挂起"),
    "error": _l("出错"), "ready": _l("待办理"), "blocked": _l("等待加签"), "cancelled": _l("已取消"),
}
EVENT_LABELS = {
    "started": _l("发起"), "task_created": _l("到达"), "task_completed": _l("提交"), "returned": _l("退回"),
    "transferred": _l("转办"), "signer_added": _l("加签"), "signed": _l("加签意见"), "commented": _l("评论"),
    "claimed": _l("认领"), "released": _l("释放"), "attached": _l("上传附件"), "urged": _l("催办"),
    "withdrawn": _l("撤销"), "suspended": _l("挂起"), "resumed": _l("恢复"), "terminated": _l("终止"),
    "retried": _l("重试"), "completed": _l("办结"), "error": _l("出错"), "timer_fired": _l("定时触发"),
}

# The error page's words for HTTP errors (the JSON API answers with the same words in Chinese).
HTTP_MESSAGES = {
    400: _l("请求格式不正确"), 401: _l("请先登录"), 403: _l("没有权限"), 404: _l("页面或资源不存在"),
    405: _l("不支持此请求方法"), 413: _l("上传内容过大"), 422: _l("提交的数据有误"), 429: _l("操作过于频繁"),
}


# -- CSRF: a per-session token in every POST form of the pages (the JSON API is separate) ------------

csrf_token = security.csrf_token  # one token per session, shared with the JSON API


@bp.record_once
def _template_helpers(state):
    # Globals rather than context, so that imported macros see them too.
    state.app.jinja_env.globals.update(csrf_token=csrf_token, local_time=local_time, file_size=file_size,
                                       is_overdue=is_overdue, lane_labels=lane_labels,
                                       start_token=lambda: secrets.token_urlsafe(24),
                                       state_label=lambda s: str(STATE_LABELS.get(s, s)))


@bp.before_request
def _check_csrf():
    if request.method == "POST" and current_app.config.get("CSRF_ENABLED", True):
        sent = request.form.get("_csrf", "")
        if not sent or not hmac.compare_digest(sent, session.get("_csrf", "")):
            audit.record("csrf_refused", current_user.username if current_user.is_authenticated else None,
                         field=bool(sent))
            return render_error(400, _("页面已过期或来源不明，请刷新页面后重试"))
    return None


def local_time(value) -> str:
    if value is None:
        return ""
    zone = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def is_overdue(task) -> bool:
    """An open task whose due time has passed."""
    return bool(task.due_at and task.state in ("ready", "blocked") and task.due_at < datetime.now(UTC))


def file_size(size: int) -> str:
    """A byte count as people read it: 256 KB, 10 MB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{max(1, round(size / 1024))} KB"


def render_error(code: int, message: str, errors=None):
    return render_template("error.html", code=code, message=message, errors=errors), code


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in: a single leading slash, no scheme or host, and
    no backslash or control character that a browser would read as `//` (`/\\evil`, a tab after the slash)."""
    if not target:
        return url_for("web.home")
    parts = urlparse(target)
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target)):
        audit.record("redirect_refused", current_user.username if current_user.is_authenticated else None,
                     target=target[:300])
        return url_for("web.home")
    return target


# -- sign-in and home --------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        try:
            user = security.sign_in_with_password(request.form.get("username", ""), request.form.get("password", ""))
        except HallError as err:
            error, status = err.message, err.code
        else:
            security.start_session(user, method="password")  # a new session with a fresh CSRF token
            return redirect(_safe_next(request.args.get("next")))
    # A refused sign-in keeps the username typed (the password is asked again).
    return render_template("login.html", error=error, username=request.form.get("username", "")[:100]), status


@bp.route("/favicon.ico")
def favicon():
    """Browsers and tools that ask for /favicon.ico get the hall's icon from static."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.route("/logout", methods=["POST"])
def logout():
    security.end_session()
    return redirect(url_for("web.login"))


@bp.route("/")
@login_required
def home():
    items, open_count = tasks.inbox(current_user, "open", page_size=5)
    done_count = tasks.inbox(current_user, "completed", page_size=1)[1]
    mine_count = processes.list_instances(current_user, starter=current_user.username, page_size=1)[1]
    return render_template("home.html", tasks=items, open_count=open_count, done_count=done_count,
                           mine_count=mine_count, returned=processes.returned_task_ids(items))


# -- catalogue and start -----------------------------------------------------------------------------

@bp.route("/services")
@login_required
def services():
    query = request.args.get("q", "").strip()
    items = processes.catalogue(current_user, query or None)
    groups = [(category, list(defs)) for category, defs in groupby(items, key=lambda d: d.category)]
    return render_template("services.html", groups=groups, q=query, total=len(items))


@bp.route("/services/<key>/start", methods=["POST"])
@login_required
def start(key):
    """Start an instance; when its first step is the starter's own form, go straight to it. The form's
    one-time token makes a second POST of it (a double tap) open the instance the first one started."""
    token = request.form.get("start_token")
    try:
        instance = (processes.start_instance_once(key, current_user, token) if token is not None
                    else processes.start_instance(key, current_user))
    except Conflict as err:  # e.g. the process was disabled after the catalogue was shown
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("web.services"))
    for task in processes.instance_tasks(instance):
        if task.state == "ready" and tasks.may_act(task, current_user):
            return redirect(url_for("web.task", task_id=task.id))
    flash(_("申请已发起"), "ok")
    return redirect(url_for("web.instance", instance_id=instance.id))


# -- lists -------------------------------------------------------------------------------------------

@bp.route("/tasks")
@login_required
def task_list():
    view = request.args.get("view", "open")
    if view not in ("open", "completed"):
        view = "open"
    # 待办 sorts by arrival (newest first) or by due time (soonest first, tasks without one last).
    sort = "due" if view == "open" and request.args.get("sort") == "due" else "created"
    page = page_arg()
    items, total = tasks.inbox(current_user, view, page=page, page_size=PAGE_SIZE, sort=sort)
    if page > 1 and not items and total:  # past the last page: go to the last one
        last = -(-total // PAGE_SIZE)
        return redirect(url_for("web.task_list", view=view, sort=(sort if sort == "due" else None), page=last))
    return render_template("tasks.html", items=items, total=total, view=view, page=page, sort=sort,
                           pages=max(1, -(-total // PAGE_SIZE)),
                           returned=processes.returned_task_ids(items) if view == "open" else set())


@bp.route("/mine")
@login_required
def mine():
    page = page_arg()
    items, total = processes.list_instances(current_user, starter=current_user.username, page=page,
                                            page_size=PAGE_SIZE)
    if page > 1 and not items and total:  # past the last page: go to the last one
        return redirect(url_for("web.mine", page=-(-total // PAGE_SIZE)))
    outcomes = processes.outcome_labels([i.id for i in items if i.state == "completed"])
    return render_template("mine.html", items=items, total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)),
                           withdrawable={i.id for i in items if processes.may_withdraw(i)}, outcomes=outcomes)


# -- a task ------------------------------------------------------------------------------------------

def _earlier_steps(instance, exclude_id: int | None = None) -> list[dict]:
    """Completed steps of the instance with their submitted data, labelled by their own forms."""
    steps = []
    for t in processes.instance_tasks(instance):
        if t.state != "completed" or t.id == exclude_id:
            continue
        schema, ui_schema = tasks.form_of(t)
        steps.append({"task": t, "pairs": forms.readable(schema, t.submitted, ui_schema, _return_choice(t)),
                      "attachments": tasks.list_attachments(t)})
    return steps


def _return_of(task) -> dict | None:
    """When the task was created by a 退回, who returned it, when and why; otherwise None."""
    cause = processes.created_by_return(processes.instance_history(task.instance), task.id)
    if cause is None:
        return None
    return {"by": cause.actor.name if cause.actor else "", "at": cause.at,
            "reason": (cause.data or {}).get("return_reason", "")}


# The field each side action's message belongs to, for the summary at the top of the page.
ACTION_FIELDS = {"reason": "reason", "username": "transfer-to", "signer": "signer", "body": "comment-body"}


def _render_task(task, values=None, errors=None, action_errors=None, status=200, upload_errors=None):
    schema, ui_schema = tasks.form_of(task)
    can_act = task.state == "ready" and tasks.may_act(task, current_user)
    if values is None:
        values = task.draft if task.draft else (tasks.task_data(task) if can_act else (task.submitted or {}))
        if can_act and not task.draft:
            values = {**forms.defaults(schema), **values}  # the schema's defaults come preselected
    fields = forms.build_fields(schema, ui_schema, values, errors)
    field_names = {f.name for f in fields} | {c.name for f in fields for row in f.rows for c in row}
    loose = {k: v for k, v in (errors or {}).items() if k not in field_names}  # errors with no field here
    can_return = can_act and tasks.can_return(task)
    earlier = _earlier_steps(task.instance, exclude_id=task.id)
    # 放弃申请: the starter's own first form, before anything was submitted, can be withdrawn from here.
    can_abandon = (can_act and task.kind == "user" and not earlier and task.instance.state == "running"
                   and task.instance.starter_id == current_user.id and processes.may_withdraw(task.instance))
    # 同意 when submitting means "approve" (the step can be returned and its form holds no decision field).
    approve = can_return and _return_variable(task) not in field_names
    return render_template(
        "task.html", task=task, instance=task.instance, schema=schema, fields=fields, can_act=can_act,
        can_return=can_return, approve=approve, loose_errors=loose, action_errors=action_errors or {},
        earlier=earlier, can_abandon=can_abandon, returned=_return_of(task) if can_act else None,
        can_delegate=can_act and task.kind == "user" and tasks.may_delegate(current_user),
        action_fields=ACTION_FIELDS, comments=tasks.list_comments(task),
        submitted=forms.readable(schema, task.submitted, ui_schema, _return_choice(task))
        if task.state == "completed" else [],
        attachments=tasks.list_attachments(task), upload_errors=upload_errors or [],
    ), status


def _return_variable(task) -> str | None:
    choice = _return_choice(task)
    return choice[0] if choice else None


def _return_choice(task) -> tuple[str, str] | None:
    """(variable, value) with which 退回 completes this step, when its diagram lets it be returned."""
    if not task.element_id:
        return None
    version = db.session.get(ProcessVersion, task.instance.process_version_id)
    spec = registry.compiled(version).user_tasks.get(task.element_id)
    variable = spec.properties.get("returnVariable") if spec else None
    return (variable, spec.properties.get("returnValue", "return")) if variable else None


# After a refused upload or comment the browser is redirected back to the task page (post/redirect/get, so
# that the URL it stays on answers GET); the messages beside the field travel in the session until then.
_LEFT_ERRORS = "task_errors"


def _leave_errors(task_id: int, field: str, messages: list[str]) -> None:
    session[_LEFT_ERRORS] = {"task": task_id, "field": field, "messages": [str(m) for m in messages]}


def _take_errors(task_id: int) -> dict[str, list[str]]:
    left = session.pop(_LEFT_ERRORS, None)
    if not left or left.get("task") != task_id:
        return {}
    return {left["field"]: left["messages"]}


def _keep_typed_form(task) -> None:
    """Save what the task form holds as the draft when the request carries it (the upload, comment, 加签
    and 转办 buttons submit the task form), so that nothing typed is lost when the page reloads or the task
    changes hands."""
    if "version" not in request.form or task.state != "ready" or not tasks.may_act(task, current_user):
        return
    schema, ui_schema = tasks.form_of(task)
    tasks.save_draft(task.id, current_user, forms.parse_form(schema, ui_schema, request.form))


@bp.route("/tasks/<int:task_id>")
@login_required
def task(task_id):
    left = _take_errors(task_id)
    return _render_task(tasks.get_task(task_id, current_user), upload_errors=left.pop("file", None),
                        action_errors=left)


@bp.route("/tasks/<int:task_id>", methods=["POST"])
@login_required
def task_action(task_id):
    """One form, several buttons: the pressed button's `action` says what to do."""
    task = tasks.get_task(task_id, current_user)
    action = request.form.get("action", "submit")
    schema, ui_schema = tasks.form_of(task)
    data = forms.parse_form(schema, ui_schema, request.form)
    version = request.form.get("version", type=database_int)
    here = url_for("web.task", task_id=task.id)
    try:
        if action == "submit":
            tasks.complete_task(task.id, current_user, data, expected_version=version)
            flash(_("已提交"), "ok")
            return redirect(url_for("web.instance", instance_id=task.instance_id))
        if action == "draft":
            tasks.save_draft(task.id, current_user, data)
            flash(_("草稿已保存"), "ok")
        elif action == "return":
            tasks.return_task(task.id, current_user, request.form.get("reason", ""), expected_version=version)
            flash(_("已退回"), "ok")
            return redirect(url_for("web.instance", instance_id=task.instance_id))
        elif action == "transfer":
            _keep_typed_form(task)  # what was typed waits in the form for the person it is handed to
            tasks.transfer_task(task.id, current_user, request.form.get("username", "").strip())
            flash(_("已转办"), "ok")
            return redirect(url_for("web.task_list"))
        elif action == "add_signer":
            _keep_typed_form(task)  # the 加签 button sends the task form: what was typed waits with the task
            tasks.add_signer(task.id, current_user, request.form.get("signer", "").strip())
            flash(_("已加签，待加签人处理后再提交"), "ok")
        elif action == "comment":
            _keep_typed_form(task)
            tasks.add_comment(task.id, current_user, request.form.get("body", ""))
            flash(_("评论已发表"), "ok")
            return redirect(here + "#comments")
        else:
            abort(400)
    except Invalid as err:
        db.session.rollback()
        if action == "comment":
            _leave_errors(task_id, "body", _messages(err))
            return redirect(here + "#comments")
        task = tasks.get_task(task_id, current_user)
        if action in ("submit", "draft"):
            return _render_task(task, values=data, errors=err.errors or {"data": [err.message]}, status=422)
        # The side actions each have one input; show the message beside it.
        field = {"return": "reason", "transfer": "username", "add_signer": "signer"}[action]
        return _render_task(task, values=data, action_errors={field: _messages(err)}, status=422)
    except HallError as err:
        db.session.rollback()
        flash(err.message, "error")
    return redirect(here)


def _messages(err: Invalid) -> list[str]:
    """An Invalid's field messages, or its message when it names no field."""
    messages = [m for v in (err.errors or {}).values() for m in (v if isinstance(v, list) else [v])]
    return messages or [err.message]


# -- attachments: uploaded on the task page, downloaded through the same access check as the API ---------

@bp.route("/tasks/<int:task_id>/attachments", methods=["POST"])
@login_required
def task_attach(task_id):
    """Upload one file to an open task. The upload button submits the task form, whose content is saved as
    the draft first; then, stored or refused, the browser goes back to the task page, a refused file's
    reason beside the upload field (the type or content, or the size) and nothing stored."""
    task = tasks.get_task(task_id, current_user)
    here = url_for("web.task", task_id=task_id) + "#attachments"
    upload = request.files.get("file")
    try:
        _keep_typed_form(task)
        if upload is None or not upload.filename:
            raise Invalid(_("请选择要上传的文件"), errors={"file": [_("请选择要上传的文件")]})
        attachment = tasks.add_attachment(task.id, current_user, upload.filename, upload.stream)
    except PayloadTooLarge:
        db.session.rollback()
        limit = file_size(current_app.config["MAX_ATTACHMENT_BYTES"])
        _leave_errors(task_id, "file", [_("文件过大，单个附件不能超过 %(limit)s", limit=limit)])
        return redirect(here)
    except Invalid as err:
        db.session.rollback()
        _leave_errors(task_id, "file", [err.message])
        return redirect(here)
    except HallError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(here)
    flash(_("已上传附件「%(name)s」", name=attachment.filename), "ok")
    return redirect(here)


@bp.route("/attachments/<int:attachment_id>")
@login_required
def attachment(attachment_id):
    """Download an attachment of a task the person may see (404 otherwise, as in the API)."""
    item, path = tasks.attachment_file(attachment_id, current_user)
    return send_file(path, mimetype=item.content_type, as_attachment=True, download_name=item.filename)


# -- an instance -------------------------------------------------------------------------------------

def _event_text(event, names: dict[str, str], holders: dict[int, str]) -> str:
    """What happened, in the page's language, with the step and the people it names."""
    step = names.get(event.element_id or "", "")
    data = event.data or {}
    if event.kind == "task_created":
        who = holders.get(event.task_id or 0)
        return (_("流转至「%(step)s」", step=step or _("下一步"))
                + (_("，由%(who)s办理", who=who) if who else ""))
    if event.kind in ("task_completed", "returned", "signed") and step:
        text = _("%(action)s「%(step)s」", action=EVENT_LABELS[event.kind], step=step)
        if event.kind == "returned" and data.get("return_reason"):
            text += _("：%(reason)s", reason=data["return_reason"])
        return text
    if event.kind == "transferred":
        return _("转办给 %(name)s", name=data.get("to_name") or data.get("to", ""))
    if event.kind == "signer_added":
        return _("加签 %(name)s", name=data.get("signer_name") or data.get("signer", ""))
    if event.kind == "commented":
        return _("评论：%(body)s", body=data.get("body", ""))
    if event.kind == "error":
        return _("出错：%(message)s", message=data.get("message", ""))
    return str(EVENT_LABELS.get(event.kind, event.kind))


def _role_names(task) -> str:
    roles = sorted({c.role_code for c in task.candidates if c.role_code})
    if not roles:
        return ""
    labels = dict(db.session.execute(sa.select(Role.code, Role.name).where(Role.code.in_(roles))).all())
    return _("、").join(labels.get(r, r) for r in roles)


@bp.route("/instances/<int:instance_id>")
@login_required
def instance(instance_id):
    inst = processes.get_instance(instance_id, current_user)
    version = db.session.get(ProcessVersion, inst.process_version_id)
    names = {element: spec.name for element, spec in registry.compiled(version).user_tasks.items()}
    history = processes.instance_history(inst)
    withdrawn = any(e.kind == "withdrawn" for e in history)
    all_tasks = processes.instance_tasks(inst)
    open_tasks = [t for t in all_tasks if t.state in processes.OPEN_TASK_STATES]
    # Who a step went to: its first assignee, or the role of its candidates when it waits to be claimed.
    holders = {t.id: (t.assignee.name if t.assignee else _role_names(t)) for t in all_tasks}
    timeline = [{"event": e, "label": str(EVENT_LABELS.get(e.kind, e.kind)), "text": _event_text(e, names, holders)}
                for e in history]
    return render_template(
        "instance.html", instance=inst, timeline=timeline, open_tasks=open_tasks,
        state_text=_("已撤销") if withdrawn else str(STATE_LABELS.get(inst.state, inst.state)),
        outcome=(processes.outcome_in(history) or {}).get("outcome_label"),
        steps=_earlier_steps(inst), is_starter=inst.starter_id == current_user.id,
        may_withdraw=processes.may_withdraw(inst),
        my_task=next((t for t in open_tasks if tasks.may_act(t, current_user)), None),
    )


@bp.route("/instances/<int:instance_id>/<any(withdraw, urge):action>", methods=["POST"])
@login_required
def instance_action(instance_id, action):
    try:
        if action == "withdraw":
            processes.withdraw_instance(instance_id, current_user)
            flash(_("申请已撤销"), "ok")
        else:
            processes.urge_instance(instance_id, current_user)
            flash(_("已催办，办理人会收到提醒"), "ok")
    except HallError as err:
        db.session.rollback()
        flash(err.message, "error")
    return redirect(_safe_next(request.form.get("next")) if request.form.get("next")
                    else url_for("web.instance", instance_id=instance_id))
