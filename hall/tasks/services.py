"""Human tasks: the inbox and every action a person takes on a task.

A task carries a version; every action that changes it is an UPDATE guarded by that version, so two
people acting at once never both win. Completing a user task runs the engine first and then writes the
instance, the task and what follows in one short transaction (see processes.services.apply_outcome).
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.util import identity_key

from hall import rawsql, transactions
from hall.accounts import services as accounts
from hall.accounts.models import User
from hall.db_types import utcnow
from hall.errors import Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge
from hall.extensions import db
from hall.processes import registry
from hall.processes import services as processes
from hall.processes.models import InstanceEvent, ProcessDefinition, ProcessInstance, ProcessVersion
from hall.tasks import form_rules
from hall.tasks.models import Attachment, Comment, HumanTask, TaskCandidate

VIEWS = ("open", "mine", "candidate", "completed")


# -- inbox -------------------------------------------------------------------------------------------

def _offered_ids(user: User):
    """The ids of the tasks the user may claim now, offered through a candidate row: named, or to a role the
    user holds (in that unit or anywhere). Read from the claimable candidate rows alone (their partial
    indexes), never from the tasks: the flag says the task is ready and unassigned (a trigger keeps it), so
    the database neither probes each offered task nor scans the unclaimed ones. A task offered by several
    matching rows may appear more than once: callers count and list distinct ids."""
    return (sa.select(TaskCandidate.task_id.label("id"))
            .where(TaskCandidate.claimable, sa.or_(TaskCandidate.user_id == user.id, *processes.role_terms(user))))


def _count(select) -> sa.ScalarSelect:
    return sa.select(sa.func.count()).select_from(select.subquery()).scalar_subquery()


def inbox(user: User, view: str = "open", page: int = 1, page_size: int = 20, sort: str = "created"):
    """待办 (open: mine + claimable), mine, candidate (unclaimed for my roles), 已办 (completed by me).

    Two statements per page: the total, then the page (its ids first, in list order, by an index scan that
    stops after the page, then what a list shows of those tasks). 待办 is my open tasks and the claimable
    ones offered to me: two disjoint sets (a claimable task has no assignee), so its total is the sum of two
    counts. The items are plain rows (`ListedTask`), not ORM objects."""
    if view not in VIEWS:
        raise Invalid("view 只能是 " + " / ".join(VIEWS), errors={"view": ["unknown view"]})
    mine = sa.select(HumanTask.id).where(HumanTask.assignee_id == user.id, HumanTask.state == "ready")
    if view == "completed":
        ids = sa.select(HumanTask.id).where(HumanTask.completed_by_id == user.id)
        total = _count(ids)
        order = (HumanTask.completed_at.desc(), HumanTask.id.desc())
    elif view == "mine":
        ids, total = mine, _count(mine)
    else:
        offered = _offered_ids(user).subquery()
        distinct = sa.select(sa.func.count(offered.c.id.distinct())).scalar_subquery()
        if view == "candidate":
            ids, total = sa.select(offered.c.id).distinct(), distinct
        else:
            ids, total = sa.union(mine, sa.select(offered.c.id)), _count(mine) + distinct
    if view != "completed":
        order = (HumanTask.due_at.asc().nulls_last(), HumanTask.id.desc()) if sort == "due" else \
            (HumanTask.id.desc(),)
    total = db.session.scalar(sa.select(total))
    if view in ("open", "candidate") and sort != "due":
        # By creation (the default): task ids are in creation order, so the page is the highest ids of
        # the id list itself, without visiting a task.
        listed = ids.subquery()
        page_ids = sa.select(listed.c.id).order_by(listed.c.id.desc())
    elif view in ("open", "candidate"):
        page_ids = sa.select(HumanTask.id).where(HumanTask.id.in_(ids)).order_by(*order)
    else:
        page_ids = ids.order_by(*order)
    page_ids = page_ids.limit(page_size).offset((page - 1) * page_size).subquery()
    rows = db.session.execute(sa.select(*_LISTED).join_from(_tasks, page_ids, page_ids.c.id == _tasks.c.id)
                              .order_by(*order)).all()
    return [ListedTask(row) for row in rows], total


_tasks = HumanTask.__table__


def _listed_columns() -> tuple:
    """What a task list shows: the task's own columns, and its instance's title, its process's key and the
    usernames of its people as scalar subqueries. PostgreSQL plans a join of five tables afresh for every
    page (~0.8 ms on the benchmark VM, ten times the page's execution); these it plans in a fraction."""
    instances, definitions = ProcessInstance.__table__, ProcessDefinition.__table__
    users = User.__table__
    instance_id = _tasks.c.instance_id

    def username(user_id):
        return sa.select(users.c.username).where(users.c.id == user_id).correlate(_tasks).scalar_subquery()

    return (
        *(_tasks.c[name] for name in ListedTask.COLUMNS),
        sa.select(instances.c.title).where(instances.c.id == instance_id).correlate(_tasks).scalar_subquery()
        .label("instance_title"),
        sa.select(definitions.c.key).join_from(instances, definitions, definitions.c.id == instances.c.definition_id)
        .where(instances.c.id == instance_id).correlate(_tasks).scalar_subquery().label("definition_key"),
        username(_tasks.c.assignee_id).label("assignee_username"),
        username(_tasks.c.completed_by_id).label("completed_by_username"),
    )


class ListedTask:
    """A task as a list shows it (TaskSchema, the web hall's task rows): the task's columns, with its instance,
    process and people reduced to what is shown. Building ORM objects for a page (tasks, instances,
    definitions, people) cost more than its SQL."""

    COLUMNS = ("id", "instance_id", "element_id", "name", "kind", "lane", "state", "assignee_id", "version",
               "due_at", "created_at", "completed_by_id", "completed_at", "parent_task_id")

    def __init__(self, row):
        values = row._mapping
        self.__dict__.update({name: values[name] for name in self.COLUMNS})
        # The related rows reduced to what a list shows of them.
        self.instance = _Loaded(title=values["instance_title"], definition=_Loaded(key=values["definition_key"]))
        self.assignee = _Loaded(username=values["assignee_username"]) if self.assignee_id is not None else None
        self.completed_by = _Loaded(username=values["completed_by_username"]) \
            if self.completed_by_id is not None else None


_LISTED = _listed_columns()


def counts(user: User) -> dict:
    return {view: inbox(user, view, page_size=1)[1] for view in ("open", "completed")}


# -- reading -----------------------------------------------------------------------------------------

def is_candidate(task: HumanTask, user: User) -> bool:
    for c in task.candidates:
        if c.user_id == user.id:
            return True
        if c.role_code:
            for m in user.memberships:
                if m.role_code == c.role_code and (c.org_unit_id is None or m.org_unit_id is None
                                                   or m.org_unit_id == c.org_unit_id):
                    return True
    return False


def may_act(task: HumanTask, user: User) -> bool:
    if task.assignee_id is not None:
        return task.assignee_id == user.id
    return is_candidate(task, user)


def may_see(task: HumanTask, user: User) -> bool:
    return (may_act(task, user) or task.completed_by_id == user.id or task.assignee_id == user.id
            or is_candidate(task, user) or processes.can_see_instance(task.instance, user))


def get_task(task_id: int, user: User) -> HumanTask:
    task = db.session.get(HumanTask, task_id)
    if task is None or not may_see(task, user):
        raise NotFound(f"待办 {task_id} 不存在")
    return task


def form_of(task: HumanTask) -> tuple[dict | None, dict | None]:
    """The task's JSON Schema and UI schema, from its process version."""
    if task.kind == "sign":
        return SIGN_FORM, None
    if not task.form_key:
        return None, None
    version = db.session.get(ProcessVersion, task.instance.process_version_id)
    forms = version.forms or {}
    return forms.get(task.form_key), forms.get(task.ui_form_key) if task.ui_form_key else None


def task_data(task: HumanTask) -> dict:
    """The data the task sees (for pre-filling its form and showing earlier steps)."""
    if task.kind == "sign" or not task.engine_task_id:
        return {}
    version = db.session.get(ProcessVersion, task.instance.process_version_id)
    process = registry.compiled(version)
    workflow = registry.engine().load(process, task.instance.workflow)
    engine_task = workflow.get_task_from_id(uuid.UUID(task.engine_task_id))
    return dict(engine_task.data) if engine_task is not None else {}


SIGN_FORM = {
    "type": "object",
    "title": "加签意见",
    "required": ["approved"],
    "properties": {
        "approved": {"type": "boolean", "title": "是否同意"},
        "opinion": {"type": "string", "title": "意见", "maxLength": 2000},
    },
}


# Checks beyond JSON Schema that the domain owning a form's data registers under the form's file name
# (e.g. quality: a 目标 must name a monitoring point that exists). A check gets the submitted data and the
# instance and returns field-level errors ({"targets.0.point": [..]}); it must not write anything.
FORM_CHECKS: dict[str, list] = {}


def form_check(*form_keys: str):
    """Register a check for the forms with these file names."""
    def register(func):
        for key in form_keys:
            FORM_CHECKS.setdefault(key, []).append(func)
        return func

    return register


def check_form(form_key: str | None, data: dict, instance: ProcessInstance) -> None:
    """422 with the field-level errors of the domain checks registered for the form, before anything is written."""
    errors: dict[str, list[str]] = {}
    for check in FORM_CHECKS.get(form_key or "", ()):
        for field, messages in (check(data, instance) or {}).items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise Invalid("表单填写有误，请检查标出的字段", errors=errors)


def validate_form(schema: dict | None, data: dict, instance_data: dict | None = None) -> None:
    """422 with field-level messages when data does not satisfy the schema; rules of the schema that compare
    with the instance's data (hall.tasks.form_rules) use *instance_data*, the data the task sees."""
    if not isinstance(data, dict):
        raise Invalid("表单数据应为 JSON 对象", errors={"data": ["应为对象"]})
    if not schema:
        return
    errors: dict[str, list[str]] = {}
    # A submit carries the form's own fields into the process and nothing else: a key the form does not
    # define would set (or overwrite) a variable another step owns, e.g. an approver's decision.
    declared = form_rules.declared_fields(schema)
    if declared is not None:
        for key in data:
            if key not in declared:
                errors[key] = ["表单中没有此字段"]
            elif declared[key]:
                errors[key] = ["此字段由系统填写，不能修改"]
    token = form_rules.INSTANCE_DATA.set(instance_data)
    try:
        found = list(_validator(schema).iter_errors(data))
    finally:
        form_rules.INSTANCE_DATA.reset(token)
    for error in found:
        field = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            field = ".".join(filter(None, [field, missing]))
            verb = "请选择" if _is_choice(_node(schema, field)) else "请填写"
            errors.setdefault(field or "data", []).append(f"{verb}{_title(schema, field)}")
        else:
            errors.setdefault(field or "data", []).append(_message(error, _title(schema, field)))
    if errors:
        raise Invalid("表单填写有误，请检查标出的字段", errors=errors)


# Compiled validators by the identity of their schema: a form schema lives in its process version's cached
# CompiledProcess (immutable, see hall.processes.registry) or is SIGN_FORM, so the same dict comes back on
# every submit and building a Draft202012Validator per request (~its schema walk) is avoidable. The entry
# keeps the schema itself, so a reused id() of a dropped schema can never match a stale validator.
_validators: dict[int, tuple[dict, form_rules.FormValidator]] = {}
_VALIDATORS_MAX = 1024


def _validator(schema: dict) -> form_rules.FormValidator:
    hit = _validators.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = form_rules.FormValidator(schema, format_checker=form_rules.FormValidator.FORMAT_CHECKER)
    if len(_validators) >= _VALIDATORS_MAX:
        _validators.clear()  # schemas of evicted process versions; the live ones come back on their next use
    _validators[id(schema)] = (schema, validator)
    return validator


def _node(schema: dict, field: str) -> dict:
    node = schema
    for part in field.split("."):
        if part.isdigit():
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node if isinstance(node, dict) else {}


def _title(schema: dict, field: str) -> str:
    return _node(schema, field).get("title") or field


def _is_choice(prop: dict) -> bool:
    """A field answered by picking (options, yes/no), whose missing answer reads 请选择, not 请填写."""
    return prop.get("type") == "boolean" or "enum" in prop or "oneOf" in prop or "anyOf" in prop


def _message(error, title: str) -> str:
    v = error.validator
    if v == "type":
        kinds = {"string": "文字", "number": "数字", "integer": "整数", "boolean": "是/否", "array": "列表",
                 "object": "对象"}
        return f"{title}应为{kinds.get(str(error.validator_value), error.validator_value)}"
    if v == "enum":
        return f"{title}只能是以下之一：" + "、".join(map(str, error.validator_value))
    if v == "minimum":
        return f"{title}不能小于{error.validator_value}"
    if v == "exclusiveMinimum":
        return f"{title}须大于{error.validator_value}"
    if v == "maximum":
        return f"{title}不能大于{error.validator_value}"
    if v == "exclusiveMaximum":
        return f"{title}须小于{error.validator_value}"
    if v == "multipleOf":
        return f"{title}须为 {error.validator_value} 的整数倍"
    if v == form_rules.KEYWORD:
        return error.message  # the rule's own Chinese message
    if v == "minLength":
        return f"{title}至少 {error.validator_value} 个字"
    if v == "maxLength":
        return f"{title}最多 {error.validator_value} 个字"
    if v == "format":
        return f"{title}格式不正确（{error.validator_value}）"
    if v == "pattern":
        return f"{title}格式不正确"
    if v == "minItems":
        return f"{title}至少需要 {error.validator_value} 项"
    return f"{title}：{error.message}"


# -- completing --------------------------------------------------------------------------------------

_Loaded = processes.CoreRow  # a related row reduced to what is read of it (the submit path, task lists)


class _TaskRow(processes.CoreRow):
    """A task of the submit path's read. Building ORM objects for the task, its instance and definition cost
    more than the statement itself; a submit changes them with guarded UPDATEs anyway."""

    @functools.cached_property
    def candidates(self) -> list[TaskCandidate]:
        """Who may claim it, read only when someone asks (an assigned task never needs them)."""
        return list(db.session.scalars(sa.select(TaskCandidate).where(TaskCandidate.task_id == self.id)))


_T, _I = HumanTask.__table__, ProcessInstance.__table__
_TASK_COLUMNS = ("id", "instance_id", "engine_task_id", "element_id", "name", "kind", "lane", "state", "assignee_id",
                 "form_key", "parent_task_id", "due_at", "version", "created_at", "completed_by_id", "completed_at")
_INSTANCE_COLUMNS = ("id", "state", "title", "workflow", "version", "starter_id", "org_unit_id", "subject_id",
                     "process_version_id", "definition_id")


def _select_for_action():
    """The statement of _load_for_action, built once (a prebuilt statement keeps its cache key, which
    SQLAlchemy would otherwise recompute on every request): the task and the other open tasks of its
    instance, each row with the instance's columns, its version's content hash and the definition's key and
    visibleTo roles. Candidates are read only if someone asks (an assigned task never needs them)."""
    definition = ProcessDefinition.__table__
    target_instance = sa.select(_T.c.instance_id).where(_T.c.id == sa.bindparam("task_id")).scalar_subquery()
    return (
        sa.select(*(_T.c[name] for name in _TASK_COLUMNS),
                  *(_I.c[name].label("i_" + name) for name in _INSTANCE_COLUMNS),
                  ProcessVersion.__table__.c.content_hash, definition.c.key.label("d_key"),
                  definition.c.visible_to.label("d_visible_to"))
        .select_from(_T.join(_I, _I.c.id == _T.c.instance_id)
                     .join(ProcessVersion.__table__, ProcessVersion.__table__.c.id == _I.c.process_version_id)
                     .join(definition, definition.c.id == _I.c.definition_id))
        .where(_T.c.instance_id == target_instance,
               sa.or_(_T.c.id == sa.bindparam("task_id"), _T.c.state.in_(processes.OPEN_TASK_STATES)))
    )


_SELECT_FOR_ACTION = _select_for_action()
# The same statement for the driver (hall/rawsql.py) on PostgreSQL, where a submit spends more CPU in
# SQLAlchemy's execution than in psycopg's: the same columns in the same order.
_FOR_ACTION_NAMES = (*_TASK_COLUMNS, *("i_" + name for name in _INSTANCE_COLUMNS), "content_hash", "d_key",
                     "d_visible_to")
_FOR_ACTION_SQL = (
    "SELECT " + ", ".join([f"t.{name}" for name in _TASK_COLUMNS] + [f"i.{name}" for name in _INSTANCE_COLUMNS]
                          + ["v.content_hash", "d.key", "d.visible_to"])
    + " FROM human_tasks t JOIN process_instances i ON i.id = t.instance_id"
    " JOIN process_versions v ON v.id = i.process_version_id JOIN process_definitions d ON d.id = i.definition_id"
    " WHERE t.instance_id = (SELECT instance_id FROM human_tasks WHERE id = %(task_id)s)"
    " AND (t.id = %(task_id)s OR t.state IN (" + ", ".join(f"'{state}'" for state in processes.OPEN_TASK_STATES)
    + "))"
)
_DATETIME_COLUMNS = ("due_at", "created_at", "completed_at")


def _rows_for_action(task_id: int) -> list[dict]:
    if _writes_in_one_statement():  # PostgreSQL
        rows = [dict(zip(_FOR_ACTION_NAMES, row, strict=True))
                for row in rawsql.execute(_FOR_ACTION_SQL, {"task_id": task_id}).fetchall()]
        for row in rows:  # in UTC, as the models' UTCDateTime columns give them
            for name in _DATETIME_COLUMNS:
                if row[name] is not None:
                    row[name] = row[name].astimezone(UTC)
        return rows
    return [row._asdict() for row in db.session.connection().execute(_SELECT_FOR_ACTION, {"task_id": task_id})]


def _load_for_action(task_id: int):
    """The task, its instance and the instance's other open tasks, in one statement, as Core rows rather
    than ORM objects: (task, open tasks, content hash of the instance's version)."""
    rows = _rows_for_action(task_id)
    mine = next((row for row in rows if row["id"] == task_id), None)
    if mine is None:
        raise NotFound(f"待办 {task_id} 不存在")
    instance = _Loaded(**{name: mine["i_" + name] for name in _INSTANCE_COLUMNS},
                       definition=_Loaded(key=mine["d_key"], visible_to=mine["d_visible_to"]))
    tasks = [_TaskRow(instance=instance, **{name: row[name] for name in _TASK_COLUMNS}) for row in rows]
    return next(t for t in tasks if t.id == task_id), tasks, mine["content_hash"]


def _check_open(task: HumanTask, user: User, expected_version: int | None) -> None:
    if not may_act(task, user):
        if may_see(task, user):
            raise Forbidden("此待办不由您办理") if task.state == "ready" else Conflict("此待办已办结或已变更，请刷新")
        raise NotFound(f"待办 {task.id} 不存在")
    if task.state != "ready":
        raise Conflict("此待办已办结或已变更，请刷新")
    if expected_version is not None and task.version != expected_version:
        raise Conflict("此待办已被处理或已变更，请刷新")
    if task.instance.state != "running":
        raise Conflict("流程实例当前不在运行中（已挂起、出错或已结束），暂不能办理")


def _guarded_task_update(task: HumanTask, **values) -> None:
    result = db.session.execute(
        sa.update(HumanTask).where(HumanTask.id == task.id, HumanTask.version == task.version,
                                   HumanTask.state == task.state)
        .values(version=task.version + 1, **values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict("此待办已被处理或已变更，请刷新")


_tasks = HumanTask.__table__


def _complete_row_statement(old_version: str, new_version: str):
    """The completing write of a task, guarded by the version and state read (bind names for the versions
    given, so the statement can share one with the instance write)."""
    return (
        sa.update(_tasks)
        .where(_tasks.c.id == sa.bindparam("task_id"), _tasks.c.version == sa.bindparam(old_version),
               _tasks.c.state == "ready")
        .values(state="completed", version=sa.bindparam(new_version, type_=_tasks.c.version.type),
                completed_by_id=sa.bindparam("user_id", type_=_tasks.c.completed_by_id.type),
                assignee_id=sa.bindparam("user_id", type_=_tasks.c.assignee_id.type),
                completed_at=sa.bindparam("now", type_=_tasks.c.completed_at.type),
                submitted=sa.bindparam("submitted", type_=_tasks.c.submitted.type), draft=sa.null())
    )


# Built once (see _select_for_action). On PostgreSQL the task's write rides in front of the instance's as a
# data-modifying CTE: one statement and one round trip fewer per submit; the instance row changes only
# when the task row did, and a row count of 0 rolls both back (409).
_COMPLETE_ROW = _complete_row_statement("old_version", "new_version")
# (SQLAlchemy would turn the instance write's `instance_id` parameter into a SET of the task row's column of
# that name; naming the column in values() as itself keeps the task's instance as it is.)
_COMPLETE_WITH_INSTANCE = processes.instance_write_guarded_by(
    _complete_row_statement("task_old_version", "task_new_version").values(instance_id=_tasks.c.instance_id)
    .returning(_tasks.c.id).cte("task_done"))


def _complete_row(task: HumanTask, user_id: int, now, data: dict) -> None:
    result = db.session.execute(_COMPLETE_ROW, {"task_id": task.id, "old_version": task.version,
                                                "new_version": task.version + 1, "user_id": user_id,
                                                "now": now, "submitted": data})
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict("此待办已被处理或已变更，请刷新")


def _writes_in_one_statement() -> bool:
    """Whether the database takes a data-modifying CTE (PostgreSQL); SQLite writes the two rows in turn."""
    return db.engine.dialect.name == "postgresql"


def complete_task(task_id: int, user: User, data: dict, expected_version: int | None,
                  decision: str = "completed") -> HumanTask:
    """Complete an open task *user* may act on; a stale version is a conflict, not a retry.

    On PostgreSQL a submit that comes before anything else of its request touched the database reads and
    writes on a pooled connection in autocommit mode, outside the ORM session (hall.rawsql.direct): one
    read, then one write statement that checks the versions read and is its own transaction. Outcomes that
    need more than that statement (timers to record, a signer's task) go back to the session and a plain
    transaction first."""
    if _writes_in_one_statement() and transactions.untouched():
        with rawsql.direct():
            return _complete(task_id, user, data, expected_version, decision)
    return _complete(task_id, user, data, expected_version, decision)


def _complete(task_id: int, user: User, data: dict, expected_version: int | None, decision: str) -> HumanTask:
    one_statement = _writes_in_one_statement()
    task, open_tasks, content_hash = _load_for_action(task_id)
    _check_open(task, user, expected_version)
    if task.kind == "sign":
        rawsql.leave_direct()
        return _complete_sign(db.session.get(HumanTask, task.id), user, data)
    if any(t.kind == "sign" and t.parent_task_id == task.id and t.state == "ready" for t in open_tasks):
        raise Conflict("加签人尚未处理完毕，暂不能提交")
    instance = task.instance
    process = registry.compiled_by_id(instance.process_version_id, content_hash) or \
        registry.compiled(db.session.get(ProcessVersion, instance.process_version_id))
    check = None
    if decision == "completed":
        schema = process.forms.get(task.form_key) if task.form_key else None
        if form_rules.reads_instance_data(schema):
            # Checked by the engine against the data the task sees, from the workflow it loads anyway.
            check = functools.partial(validate_form, schema, data)
        else:
            validate_form(schema, data)
        check_form(task.form_key, data, instance)
    try:
        outcome = registry.engine().complete(process, instance.workflow, task.engine_task_id, data, check=check)
    except LookupError:
        raise Conflict("此待办在流程中已不可办理，请刷新") from None
    now = utcnow()
    # A plain row, not an ORM object: apply_outcome writes it with Core.
    events = [processes.CoreRow(instance_id=instance.id, task_id=task.id, element_id=task.element_id,
                                kind="task_completed" if decision == "completed" else "returned",
                                actor_id=user.id, at=now, data=data)]
    if outcome.timers:
        rawsql.leave_direct()  # apply_outcome writes timers with the general path: several statements
    if one_statement:
        joined = (_COMPLETE_WITH_INSTANCE, {"task_id": task.id, "task_old_version": task.version,
                                            "task_new_version": task.version + 1, "user_id": user.id,
                                            "now": now, "submitted": data})
        try:
            processes.apply_outcome(instance, process, outcome, events, expected_version=instance.version,
                                    open_tasks=open_tasks, finished_task_id=task.id, instance_write=joined,
                                    task_write=processes.TaskWrite(task.id, task.version, user.id, data))
        except Conflict:
            # Mostly a second submit of the same task; the task or the instance moved, either way refresh.
            raise Conflict("此待办已被处理或已变更，请刷新") from None
    else:
        _complete_row(task, user.id, now, data)
        processes.apply_outcome(instance, process, outcome, events, expected_version=instance.version,
                                open_tasks=open_tasks, finished_task_id=task.id)
    task.__dict__.update(state="completed", version=task.version + 1, completed_by_id=user.id, completed_at=now,
                         submitted=data, assignee_id=user.id, draft=None)
    if not rawsql.in_direct() or transactions.holds_work():
        transactions.commit_keeping_loaded()
    # The caller may hold ORM objects of this task or instance from before (a page, a job): they are stale now.
    for model, key in ((HumanTask, task.id), (ProcessInstance, instance.id)):
        loaded = db.session.identity_map.get(identity_key(model, key))
        if loaded is not None:
            db.session.expire(loaded)
    return task


def return_task(task_id: int, user: User, reason: str, expected_version: int | None) -> HumanTask:
    """退回: complete the task with the diagram's return decision, so its gateway routes back."""
    task, _, _ = _load_for_action(task_id)
    version = db.session.get(ProcessVersion, task.instance.process_version_id)
    props = registry.compiled(version).user_tasks.get(task.element_id)
    props = props.properties if props else {}
    variable = props.get("returnVariable")
    if not variable:
        raise Conflict("此步骤在流程图中没有退回路径，不能退回")
    if not reason or not reason.strip():
        raise Invalid("请填写退回理由", errors={"reason": ["请填写退回理由"]})
    data = {variable: props.get("returnValue", "return"), "return_reason": reason.strip()}
    return complete_task(task_id, user, data, expected_version, decision="returned")


def _complete_sign(task: HumanTask, user: User, data: dict) -> HumanTask:
    validate_form(SIGN_FORM, data)
    now = utcnow()
    _guarded_task_update(task, state="completed", completed_by_id=user.id, completed_at=now, submitted=data)
    remaining = db.session.scalar(sa.select(sa.func.count()).select_from(HumanTask).where(
        HumanTask.parent_task_id == task.parent_task_id, HumanTask.state == "ready", HumanTask.id != task.id))
    if not remaining:
        db.session.execute(sa.update(HumanTask).where(HumanTask.id == task.parent_task_id, HumanTask.state == "blocked")
                           .values(state="ready", version=HumanTask.version + 1))
    db.session.add(InstanceEvent(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id,
                                 kind="signed", actor_id=user.id, at=now, data=data))
    db.session.commit()
    db.session.refresh(task)
    return task


# -- assignment actions ------------------------------------------------------------------------------

def claim_task(task_id: int, user: User) -> HumanTask:
    task = get_task(task_id, user)
    if task.state != "ready":
        raise Conflict("此待办已办结或已变更，请刷新")
    if task.assignee_id == user.id:
        return task
    if task.assignee_id is not None:
        raise Conflict("此待办已被他人认领")
    if not is_candidate(task, user):
        raise Forbidden("此待办不由您办理")
    _guarded_task_update(task, assignee_id=user.id)
    db.session.add(InstanceEvent(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id,
                                 kind="claimed", actor_id=user.id))
    db.session.commit()
    db.session.refresh(task)
    return task


def release_task(task_id: int, user: User) -> HumanTask:
    task = get_task(task_id, user)
    if task.state != "ready" or task.assignee_id != user.id:
        raise Conflict("只能释放自己认领的待办")
    if not task.candidates or all(c.user_id == user.id for c in task.candidates):
        raise Conflict("此待办只指派给您一人，不能释放；如需他人办理请转办")
    _guarded_task_update(task, assignee_id=None)
    db.session.add(InstanceEvent(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id,
                                 kind="released", actor_id=user.id))
    db.session.commit()
    db.session.refresh(task)
    return task


def transfer_task(task_id: int, user: User, username: str, comment: str | None = None,
                  due_at: datetime | None = None) -> HumanTask:
    """转办: hand the task to another person, who becomes its only assignee (optionally with a new due time)."""
    task, _, _ = _load_for_action(task_id)
    _check_open(task, user, None)
    _check_may_delegate(user)
    target = accounts.delegate_for(username, user, verb="转办")
    _guarded_task_update(task, assignee_id=target.id, **({"due_at": _future(due_at)} if due_at else {}))
    db.session.add(TaskCandidate(task_id=task.id, user_id=target.id))
    db.session.add(InstanceEvent(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id,
                                 kind="transferred", actor_id=user.id,
                                 data={"to": target.username, "to_name": target.name, "comment": comment}))
    db.session.commit()
    return db.session.get(HumanTask, task.id)


def list_delegates(task_id: int, user: User, q: str | None = None) -> list[User]:
    """The people *user* may transfer this task to or ask to sign: only for someone who may act on it."""
    task = get_task(task_id, user)
    if not may_act(task, user):
        raise Forbidden("只有待办的处理人可以转办或加签")
    _check_may_delegate(user)
    return accounts.list_delegates(user, q)


def may_delegate(user: User) -> bool:
    """转办 and 加签 hand work to staff; they are staff's tools: a student's own steps stay the student's."""
    return accounts.is_staff(user)


def _check_may_delegate(user: User) -> None:
    if not may_delegate(user):
        raise Forbidden("学生的待办须本人办理，不能转办或加签")


def _future(due_at: datetime) -> datetime:
    due_at = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
    if due_at <= utcnow():
        raise Invalid("截止时间不能早于现在", errors={"due_at": ["截止时间不能早于现在"]})
    return due_at


def add_signer(task_id: int, user: User, username: str, comment: str | None = None,
               due_at: datetime | None = None) -> HumanTask:
    """加签: another person must give an opinion before this task can be submitted."""
    due_at = _future(due_at) if due_at else None
    task, _, _ = _load_for_action(task_id)
    _check_open(task, user, None)
    if task.kind == "sign":
        raise Conflict("加签待办不能再加签")
    _check_may_delegate(user)
    target = accounts.delegate_for(username, user, verb="加签")
    _guarded_task_update(task, state="blocked", assignee_id=user.id)
    sign = HumanTask(instance_id=task.instance_id, element_id=task.element_id, name=f"加签：{task.name}",
                     kind="sign", parent_task_id=task.id, assignee_id=target.id, lane=task.lane,
                     due_at=due_at)
    db.session.add(sign)
    db.session.flush()
    db.session.add(TaskCandidate(task_id=sign.id, user_id=target.id))
    db.session.add(InstanceEvent(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id,
                                 kind="signer_added", actor_id=user.id,
                                 data={"signer": target.username, "signer_name": target.name, "comment": comment,
                                       "sign_task": sign.id}))
    db.session.commit()
    return sign


def save_draft(task_id: int, user: User, data: dict) -> HumanTask:
    task = get_task(task_id, user)
    if task.state != "ready" or not may_act(task, user):
        raise Conflict("只能为自己待办的任务保存草稿")
    if not isinstance(data, dict):
        raise Invalid("草稿应为 JSON 对象")
    # A draft does not change who acts or what the engine sees, so it does not bump the version.
    db.session.execute(sa.update(HumanTask).where(HumanTask.id == task.id, HumanTask.state == "ready")
                       .values(draft=data))
    db.session.commit()
    db.session.refresh(task)
    return task


# -- comments and attachments ------------------------------------------------------------------------

def add_comment(task_id: int, user: User, body: str) -> Comment:
    task = get_task(task_id, user)
    if not body or not body.strip():
        raise Invalid("评论内容不能为空", errors={"body": ["评论内容不能为空"]})
    if len(body) > 5000:
        raise Invalid("评论过长（最多 5000 字）", errors={"body": ["最多 5000 字"]})
    comment = Comment(task_id=task.id, author_id=user.id, body=body.strip())
    db.session.add(comment)
    db.session.add(InstanceEvent(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id,
                                 kind="commented", actor_id=user.id, data={"body": body.strip()}))
    db.session.commit()
    return comment


def list_comments(task: HumanTask) -> list[Comment]:
    return list(db.session.scalars(sa.select(Comment).where(Comment.task_id == task.id).order_by(Comment.id)))


# Allowed uploads: extension -> (content type, leading bytes that must match or None for text).
ALLOWED_UPLOADS = {
    ".pdf": ("application/pdf", [b"%PDF"]),
    ".png": ("image/png", [b"\x89PNG"]),
    ".jpg": ("image/jpeg", [b"\xff\xd8\xff"]),
    ".jpeg": ("image/jpeg", [b"\xff\xd8\xff"]),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", [b"PK\x03\x04"]),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", [b"PK\x03\x04"]),
    ".pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", [b"PK\x03\x04"]),
    ".zip": ("application/zip", [b"PK\x03\x04"]),
    ".txt": ("text/plain", None),
    ".csv": ("text/csv", None),
}


def add_attachment(task_id: int, user: User, filename: str, stream) -> Attachment:
    task = get_task(task_id, user)
    if task.state not in ("ready", "blocked") or not (may_act(task, user) or task.assignee_id == user.id):
        raise Conflict("只能在自己待办的任务上上传附件")
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    ext = os.path.splitext(name)[1].lower()
    if not name or ext not in ALLOWED_UPLOADS:
        raise Invalid("不支持的文件类型，允许：" + "、".join(sorted(ALLOWED_UPLOADS)),
                      errors={"file": ["文件类型不允许"]})
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    content = stream.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"文件过大，单个附件不能超过 {_size_label(limit)}")
    if not content:
        raise Invalid("文件为空", errors={"file": ["文件为空"]})
    content_type, magics = ALLOWED_UPLOADS[ext]
    if magics is not None and not any(content.startswith(m) for m in magics):
        raise Invalid("文件内容与扩展名不符", errors={"file": ["文件内容与类型不符"]})
    if magics is None:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("文本文件应为 UTF-8 编码", errors={"file": ["不是 UTF-8 文本"]}) from None
    key = uuid.uuid4().hex
    folder = Path(current_app.config["ATTACHMENT_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key
    path.write_bytes(content)
    try:
        attachment = Attachment(task_id=task.id, uploader_id=user.id, filename=name, content_type=content_type,
                                size=len(content), storage_key=key, sha256=hashlib.sha256(content).hexdigest())
        db.session.add(attachment)
        db.session.add(InstanceEvent(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id,
                                     kind="attached", actor_id=user.id, data={"filename": name, "size": len(content)}))
        db.session.commit()
    except Exception:
        db.session.rollback()
        path.unlink(missing_ok=True)
        raise
    return attachment


def _size_label(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


def list_attachments(task: HumanTask) -> list[Attachment]:
    return list(db.session.scalars(sa.select(Attachment).where(Attachment.task_id == task.id).order_by(Attachment.id)))


def attachment_file(attachment_id: int, user: User) -> tuple[Attachment, Path]:
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("附件不存在")
    get_task(attachment.task_id, user)  # 404 unless the user may see the task
    return attachment, Path(current_app.config["ATTACHMENT_DIR"]) / attachment.storage_key





def can_return(task: HumanTask) -> bool:
    if task.kind != "user" or task.state != "ready":
        return False
    version = db.session.get(ProcessVersion, task.instance.process_version_id)
    meta = registry.compiled(version).user_tasks.get(task.element_id)
    return bool(meta and meta.properties.get("returnVariable"))
