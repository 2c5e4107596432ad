"""Process definitions and instances: deploy, start, list, read, administer, fire timers.

Every state change of an instance is one short transaction, taken after the engine work is done:
the instance row is updated only if its version is still the one that was read (optimistic lock),
together with the task projection and the history events.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import defer, joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from hall import jsontext, rawsql, transactions
from hall.access import head_unit_ids, visible_to_roles
from hall.accounts.models import User
from hall.db_types import utcnow
from hall.engine import CompiledProcess, DiagramRefused, Outcome, compile_process
from hall.errors import BadRequest, Conflict, Forbidden, HallError, Invalid, NotFound
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.processes import registry
from hall.processes.models import InstanceEvent, ProcessDefinition, ProcessInstance, ProcessVersion, StartRequest, Timer
from hall.tasks import form_rules
from hall.tasks.assignment import AssignmentResolver, subject_owner
from hall.tasks.models import HumanTask, TaskCandidate
from hall.transactions import commit_keeping_loaded

OPEN_TASK_STATES = ("ready", "blocked")


# -- deploy ------------------------------------------------------------------------------------------

def deploy(files: dict[str, bytes], forms: dict[str, dict], user: User | None = None,
           main_file: str | None = None) -> tuple[ProcessVersion, bool]:
    """Deploy BPMN files with their forms; identical content returns the existing version (created=False)."""
    try:
        process = compile_process(files, forms, current_app.config["MAX_BPMN_BYTES"], main_file)
    except DiagramRefused as err:
        raise HallError("流程图未通过校验，不能部署", errors=[p.as_dict() for p in err.problems], code=422) from None
    definition = db.session.scalar(sa.select(ProcessDefinition).where(ProcessDefinition.key == process.key))
    if definition is not None:
        existing = db.session.scalar(sa.select(ProcessVersion).where(
            ProcessVersion.definition_id == definition.id, ProcessVersion.content_hash == process.content_hash
        ))
        if existing is not None:
            return existing, False
    meta = process.metadata
    if definition is None:
        definition = ProcessDefinition(key=process.key)
        db.session.add(definition)
    definition.name = process.name
    definition.category = meta.get("category") or definition.category or "其他"
    definition.description = meta.get("description", definition.description or "")
    if meta.get("expectedDays", "").isdigit():
        definition.expected_days = int(meta["expectedDays"])
    if "startableBy" in meta:
        definition.startable_by = visible_to_roles(meta["startableBy"])
    if "visibleTo" in meta:
        definition.visible_to = visible_to_roles(meta["visibleTo"])
    if "inCatalogue" in meta:
        definition.in_catalogue = _in_catalogue(meta["inCatalogue"])
    db.session.flush()
    number = (db.session.scalar(
        sa.select(sa.func.max(ProcessVersion.number)).where(ProcessVersion.definition_id == definition.id)
    ) or 0) + 1
    version = ProcessVersion(
        definition_id=definition.id, number=number, content_hash=process.content_hash,
        bpmn_filename=process.main_file, bpmn_xml=process.bpmn_xml, forms=process.forms,
        dependencies=process.dependencies, deployed_by_id=user.id if user else None,
    )
    db.session.add(version)
    db.session.flush()
    definition.latest_version_id = version.id
    db.session.commit()
    registry.remember(version.id, process)
    return version, True


def validate(files: dict[str, bytes], forms: dict[str, dict], main_file: str | None = None) -> dict:
    """The checks of deploy without storing anything: the process key and name, or the problems found."""
    try:
        process = compile_process(files, forms, current_app.config["MAX_BPMN_BYTES"], main_file)
    except DiagramRefused as err:
        return {"valid": False, "key": None, "name": None, "problems": [p.as_dict() for p in err.problems],
                "warnings": [], "publish": None}
    return {"valid": True, "key": process.key, "name": process.name, "problems": [],
            "warnings": _warnings(process), "publish": _publish_preview(process)}


def _in_catalogue(value: str) -> bool:
    """The process property `inCatalogue`: anything but false / 0 / no keeps the process in 办事."""
    return value.lower() not in ("false", "0", "no")


def _warnings(process: CompiledProcess) -> list[str]:
    """What deploys but is likely a mistake: a process nobody handles ends as soon as it starts."""
    warnings = []
    if not process.user_tasks:
        warnings.append("此流程没有任何用户任务：发起后会立即办结，没有人办理")
    return warnings


def _publish_preview(process: CompiledProcess) -> dict:
    """What deploying this content would publish: new definition, new version or the unchanged one, and where."""
    meta = process.metadata
    definition = db.session.scalar(sa.select(ProcessDefinition).where(ProcessDefinition.key == process.key))
    latest = same = None
    if definition is not None:
        latest = db.session.scalar(sa.select(sa.func.max(ProcessVersion.number))
                                   .where(ProcessVersion.definition_id == definition.id))
        same = db.session.scalar(sa.select(ProcessVersion.number).where(
            ProcessVersion.definition_id == definition.id, ProcessVersion.content_hash == process.content_hash))
    in_catalogue = (_in_catalogue(meta["inCatalogue"]) if "inCatalogue" in meta
                    else (definition.in_catalogue if definition is not None else True))
    startable = (visible_to_roles(meta["startableBy"]) if "startableBy" in meta
                 else (list(definition.startable_by) if definition is not None else []))
    return {
        "key": process.key, "name": process.name,
        "category": meta.get("category") or (definition.category if definition is not None else None) or "其他",
        "unchanged": same is not None, "version": same if same is not None else (latest or 0) + 1,
        "new_definition": definition is None, "in_catalogue": in_catalogue,
        "enabled": definition.enabled if definition is not None else True, "startable_by": startable,
    }


_FORM_REF = re.compile(r'name="(?:formJsonSchemaFilename|formUiSchemaFilename)"\s+value="([^"]+)"')


def deploy_directory(workflows_dir: str, forms_dir: str, user: User | None = None) -> list[tuple[ProcessVersion, bool]]:
    """Deploy every .bpmn file of a folder with the forms it names from the forms folder."""
    results = []
    for path in sorted(Path(workflows_dir).glob("*.bpmn")):
        content = path.read_bytes()
        forms = {}
        for name in sorted(set(_FORM_REF.findall(content.decode("utf-8")))):
            form_path = Path(forms_dir) / name
            if form_path.exists():
                forms[name] = json.loads(form_path.read_text(encoding="utf-8"))
        results.append(deploy({path.name: content}, forms, user))
    return results


def list_definitions(catalogue_only: bool = False) -> list[ProcessDefinition]:
    query = sa.select(ProcessDefinition).where(ProcessDefinition.latest_version_id.is_not(None))
    if catalogue_only:
        query = query.where(ProcessDefinition.in_catalogue.is_(True), ProcessDefinition.enabled.is_(True))
    return list(db.session.scalars(query.order_by(ProcessDefinition.category, ProcessDefinition.name)))


def catalogue(user: User, search: str | None = None) -> list[ProcessDefinition]:
    """Definitions this user may start, by category."""
    roles = user.role_codes
    items = [d for d in list_definitions(catalogue_only=True) if not d.startable_by or roles & set(d.startable_by)]
    if search:
        needle = search.strip().lower()
        items = [d for d in items if needle in d.name.lower() or needle in (d.description or "").lower()
                 or needle in d.category.lower()]
    return items


def set_definition_enabled(key: str, enabled: bool, user: User) -> ProcessDefinition:
    """停用 / 启用: a disabled process leaves the catalogue and refuses people's new starts; its running
    instances go on."""
    from hall.audit import services as audit

    definition = get_definition(key)
    if definition.enabled != enabled:
        definition.enabled = enabled
        db.session.commit()
        audit.record("process_enabled" if enabled else "process_disabled", user.username, key=key,
                     name=definition.name)
    return definition


def _refuse_disabled(definition: ProcessDefinition) -> None:
    if not definition.enabled:
        raise Conflict(f"流程「{definition.name}」已停用，暂不能发起新的申请；已发起的办件照常办理")


def get_definition(key: str) -> ProcessDefinition:
    definition = db.session.scalar(sa.select(ProcessDefinition).where(ProcessDefinition.key == key))
    if definition is None or definition.latest_version_id is None:
        raise NotFound(f"流程 {key} 不存在")
    return definition


def list_versions(key: str) -> list[ProcessVersion]:
    definition = get_definition(key)
    return list(db.session.scalars(
        sa.select(ProcessVersion).where(ProcessVersion.definition_id == definition.id).order_by(ProcessVersion.number)
    ))


def get_version(key: str, number: int) -> ProcessVersion:
    definition = get_definition(key)
    version = db.session.scalar(sa.select(ProcessVersion).where(
        ProcessVersion.definition_id == definition.id, ProcessVersion.number == number
    ))
    if version is None:
        raise NotFound(f"流程 {key} 没有第 {number} 版")
    return version


# -- instances ---------------------------------------------------------------------------------------

def start_instance(key: str, user: User, data: dict | None = None, org_unit_id: int | None = None,
                   subject_id: int | None = None, title: str | None = None, check_startable: bool = True,
                   commit: bool = True) -> ProcessInstance:
    """Start the latest version of a definition for *user*; the first tasks are created with it.

    With *commit* on PostgreSQL, a request that has not used the database yet reads and writes on an
    autocommit connection (hall.transactions): the new instance and everything that comes with it are one
    statement, its own transaction; an outcome with timers goes back to a plain transaction first."""
    autocommit = commit and transactions.begin_autocommit()
    # The definition with its latest version's row, without the diagram and forms (the parsed spec is
    # cached; they are read only on a miss): one statement.
    found = db.session.execute(_DEFINITION_WITH_HEAD, {"key": key}).first()
    if found is None:
        raise NotFound(f"流程 {key} 不存在")
    definition, version = found
    if check_startable:  # a person's start; the hall's own starts (cycles, warnings) are its business
        _refuse_disabled(definition)
        if not definition.in_catalogue and not user.is_admin:
            # Not in 办事: the hall starts it for its own records (a cycle unit, a warning) with its own data.
            raise Forbidden("此流程由大厅自动发起，不能手动发起")
    if check_startable and definition.startable_by and not (user.role_codes & set(definition.startable_by)):
        raise Forbidden("您没有发起此流程的权限")
    if check_startable and (org_unit_id is not None or subject_id is not None):
        _check_start_scope(user, org_unit_id, subject_id)
    process = registry.compiled(version)
    if data and check_startable:
        _refuse_preset_fields(process, data)
    # Who started it is the signed-in person, whatever the data says.
    data = {**(data or {}), "starter": user.username, "starter_name": user.name}
    outcome = registry.engine().start(process, data)
    instance = ProcessInstance(
        definition=definition, process_version=version, starter=user,
        org_unit_id=org_unit_id or user.org_unit_id, subject_id=subject_id,
        title=title or f"{definition.name} · {user.name}", workflow={}, version=0,
    )
    events = [InstanceEvent(kind="started", actor_id=user.id, data=data or None)]
    if autocommit and outcome.timers:
        transactions.leave_autocommit()  # timers are written with the general path: several statements
    apply_outcome(instance, process, outcome, events, expected_version=None)
    if commit:
        commit_keeping_loaded()
    return instance


START_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _check_start_scope(user: User, org_unit_id: int | None, subject_id: int | None) -> None:
    """A person starts in a unit of their own (their unit, one where they hold a role, or one below those),
    never in another department to have its head approve; and for a quality subject only as its responsible
    person. Administrators may start anywhere, in a unit that exists."""
    if org_unit_id is not None:
        unit = db.session.get(OrgUnit, org_unit_id)
        if unit is None:
            raise Invalid(f"部门 {org_unit_id} 不存在", errors={"org_unit": ["部门不存在"]})
        own = ({user.org_unit_id} | {m.org_unit_id for m in user.memberships}) - {None}
        if not user.is_admin and not own & set(unit.ancestor_ids()):
            raise Invalid("只能在本人所在的部门发起", errors={"org_unit": ["只能在本人所在的部门发起"]})
    if subject_id is not None and not user.is_admin and subject_owner(subject_id) != user.id:
        raise Invalid("只能为本人负责的质量主体发起", errors={"subject": ["只能为本人负责的质量主体发起"]})


def _refuse_preset_fields(process: CompiledProcess, data: dict) -> None:
    """422 when a person's start data names a field that a step's form fills (an approver's decision, the
    applicant's own answers): those come from the steps, never from the start."""
    filled: set[str] = set()
    for name, schema in process.forms.items():
        if not name.endswith("uischema.json"):
            filled |= set(form_rules.declared_fields(schema) or ())
    preset = sorted(set(data) & filled)
    if preset:
        raise Invalid("发起时不能预设由流程步骤填写的字段：" + "、".join(preset),
                      errors={key: ["此字段由流程步骤的表单填写，发起时不能预设"] for key in preset})


def start_instance_once(key: str, user: User, token: str) -> ProcessInstance:
    """Start from a start form carrying a one-time *token*: the first POST of the form starts the instance,
    a second one (a double tap, a resend) returns the instance the first started while it still runs.

    The token's row and the instance are written in one transaction: a concurrent second POST waits on the
    row's key until the first commits, then finds its instance."""
    if not START_TOKEN.fullmatch(token or ""):
        raise BadRequest("发起表单已失效，请刷新页面后重试")
    row = StartRequest(user_id=user.id, token=token)
    db.session.add(row)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        row = db.session.get(StartRequest, (user.id, token))
        instance = db.session.get(ProcessInstance, row.instance_id) if row and row.instance_id else None
        if instance is not None and instance.state in ("running", "suspended"):
            return instance
        # The first one was withdrawn (放弃申请) or has ended: this tap starts a new application.
        if row is None:
            row = StartRequest(user_id=user.id, token=token)
            db.session.add(row)
    instance = start_instance(key, user, commit=False)
    db.session.flush()
    row.instance_id = instance.id
    commit_keeping_loaded()
    return instance


# How long a start form's token is remembered: a double tap or a resend comes within seconds; a page left
# open for a day and sent again simply starts a new application.
START_TOKEN_DAYS = 1


def forget_start_requests(now: datetime | None = None) -> int:
    """Delete start tokens older than START_TOKEN_DAYS (a periodic job), so the table stays small."""
    cutoff = (now or utcnow()) - timedelta(days=START_TOKEN_DAYS)
    deleted = db.session.execute(sa.delete(StartRequest).where(StartRequest.created_at < cutoff)).rowcount
    db.session.commit()
    return deleted


class CoreRow:
    """A row read or written with Core rather than loaded as an ORM object, holding the attributes the API
    schemas read under the models' names; the people it names are looked up when asked (the signed-in user
    is already in the session, so that costs no statement)."""

    def __init__(self, **values):
        self.__dict__.update(values)

    @staticmethod
    def _person(user_id: int | None) -> User | None:
        return db.session.get(User, user_id) if user_id is not None else None

    actor = property(lambda self: self._person(self.__dict__.get("actor_id")))
    assignee = property(lambda self: self._person(self.__dict__.get("assignee_id")))
    completed_by = property(lambda self: self._person(self.__dict__.get("completed_by_id")))


class _Written(CoreRow):
    """A row apply_outcome has just inserted, so the answer to a start does not read back what it wrote."""

    completed_at = None
    submitted = None


def start_instances(key: str, user: User, items: list[dict]) -> list[int]:
    """Start the latest version of a definition once per item, for background jobs that start many at once
    (opening a diagnosis cycle, warning handling); returns the new instance ids in the items' order.

    An item is {data, org_unit_id?, subject_id?, title?, starter?} (starter: a User, default *user*). The
    definition and version are read once, lanes are resolved once per (org unit, role), and the batch is
    written with one INSERT … RETURNING per table (instances, tasks, candidates, events, timers) into the
    caller's transaction, which the caller commits. Nobody's start permission is checked: the hall starts them.
    """
    if not items:
        return []
    definition = get_definition(key)
    version = db.session.execute(_VERSION_HEAD, {"version_id": definition.latest_version_id}).scalar_one()
    process = registry.compiled(version)
    engine = registry.engine()
    now = utcnow()
    resolvers: dict[int | None, AssignmentResolver] = {}  # per org unit: its role lookups hold for the batch
    instance_rows, outcomes, starts = [], [], []
    for item in items:
        starter = item.get("starter") or user
        data = dict(item.get("data") or {})
        data.setdefault("starter", starter.username)
        data.setdefault("starter_name", starter.name)
        outcome = engine.start(process, data)
        state = outcome.status
        org_unit_id = item.get("org_unit_id") or starter.org_unit_id
        instance_rows.append(dict(
            definition_id=definition.id, process_version_id=version.id, state=state,
            title=item.get("title") or f"{definition.name} · {starter.name}", workflow=outcome.state, version=1,
            starter_id=starter.id, org_unit_id=org_unit_id, subject_id=item.get("subject_id"),
            current_elements=outcome.current_elements, completed_elements=outcome.completed_elements,
            error_message=outcome.error_message, error_element=outcome.error_element, started_at=now,
            ended_at=now if state == "completed" else None,
        ))
        outcomes.append(outcome)
        starts.append((starter, data))
    instance_ids = db.session.execute(_INSERT_INSTANCES, instance_rows).scalars().all()

    task_rows, assignments, task_owner = [], [], []
    timer_rows, tail_events = [], []
    for index, (instance_id, row, outcome) in enumerate(zip(instance_ids, instance_rows, outcomes, strict=True)):
        resolver = resolvers.get(row["org_unit_id"])
        if resolver is None:
            resolver = resolvers[row["org_unit_id"]] = AssignmentResolver(None)
        # The resolver reads the starter and subject of the instance it serves; its role lookups depend
        # on the org unit only, so one resolver serves every instance of that unit.
        resolver.instance = _InstanceStub(instance_id, row["starter_id"], row["org_unit_id"], row["subject_id"])
        for ready in outcome.ready:
            assignment = resolver.resolve(ready.lane, ready.properties, ready.data)
            assignments.append(assignment)
            task_owner.append(index)
            task_rows.append(dict(
                instance_id=instance_id, engine_task_id=ready.engine_task_id, element_id=ready.element_id,
                name=ready.name, lane=ready.lane, form_key=ready.form_key, ui_form_key=ready.ui_form_key,
                assignee_id=assignment.assignee_id, due_at=_due(ready.properties, now, ready.data) or ready.due_at,
                kind="user", state="ready", version=1, created_at=now,
            ))
        timer_rows += [dict(instance_id=instance_id, engine_task_id=tid, element_id=element, due_at=due)
                       for tid, element, due in outcome.timers]
        if row["state"] == "completed":
            tail_events.append((index, dict(instance_id=instance_id, task_id=None, element_id=None, kind="completed",
                                            actor_id=None, at=now, data=None)))
        elif row["state"] == "error":
            tail_events.append((index, dict(instance_id=instance_id, task_id=None, element_id=outcome.error_element,
                                            kind="error", actor_id=None, at=now,
                                            data={"message": outcome.error_message})))
    task_ids = db.session.execute(_INSERT_TASKS, task_rows).scalars().all() if task_rows else []
    candidates = [
        dict(task_id=task_id, user_id=user_id, role_code=role, org_unit_id=unit,
             claimable=assignment.assignee_id is None)
        for task_id, assignment in zip(task_ids, assignments, strict=True)
        for (user_id, role, unit) in assignment.candidates
    ]
    if candidates:
        db.session.execute(_INSERT_CANDIDATES, candidates)
    if timer_rows:
        db.session.execute(_INSERT_TIMERS, timer_rows)
    # Each instance's history in the order a single start writes it: started, its tasks, then its end.
    per_instance: list[list[dict]] = [[dict(instance_id=instance_id, task_id=None, element_id=None, kind="started",
                                            actor_id=starter.id, at=now, data=data or None)]
                                      for instance_id, (starter, data) in zip(instance_ids, starts, strict=True)]
    for task_id, index, row in zip(task_ids, task_owner, task_rows, strict=True):
        per_instance[index].append(dict(instance_id=row["instance_id"], task_id=task_id, element_id=row["element_id"],
                                        kind="task_created", actor_id=None, at=now, data=None))
    for index, event in tail_events:
        per_instance[index].append(event)
    db.session.execute(_INSERT_EVENTS, [event for events in per_instance for event in events])
    return list(instance_ids)


class _InstanceStub:
    """What AssignmentResolver reads of an instance, for instances written with Core inserts."""

    __slots__ = ("id", "starter_id", "org_unit_id", "subject_id")

    def __init__(self, instance_id: int, starter_id: int | None, org_unit_id: int | None, subject_id: int | None):
        self.id, self.starter_id, self.org_unit_id, self.subject_id = instance_id, starter_id, org_unit_id, subject_id


_VERSION_HEAD = sa.select(ProcessVersion).where(ProcessVersion.id == sa.bindparam("version_id")).options(
    defer(ProcessVersion.bpmn_xml), defer(ProcessVersion.forms), defer(ProcessVersion.dependencies))
_DEFINITION_WITH_HEAD = (
    sa.select(ProcessDefinition, ProcessVersion)
    .join(ProcessVersion, ProcessVersion.id == ProcessDefinition.latest_version_id)
    .where(ProcessDefinition.key == sa.bindparam("key"))
    .options(defer(ProcessVersion.bpmn_xml), defer(ProcessVersion.forms), defer(ProcessVersion.dependencies))
)
_instances = ProcessInstance.__table__
# The instance write of apply_outcome, built once so SQLAlchemy does not rebuild its cache key per request.
_WRITE_INSTANCE = (
    sa.update(_instances)
    .where(_instances.c.id == sa.bindparam("instance_id"), _instances.c.version == sa.bindparam("old_version"))
    .values(version=sa.bindparam("new_version", type_=_instances.c.version.type), **{
        name: sa.bindparam(name, type_=_instances.c[name].type)
        for name in ("workflow", "state", "current_elements", "completed_elements", "error_message", "error_element",
                     "ended_at")
    })
)


def instance_write_guarded_by(cte):
    """The instance write of apply_outcome with a data-modifying CTE (PostgreSQL) in front of it, built once
    by the caller: the instance row changes only when the CTE's guarded UPDATE … RETURNING returned a row,
    so a row count of 1 means both guards held, and on 0 apply_outcome rolls back (the CTE's write too).
    One round trip for two guarded writes. The CTE's parameter names must differ from the instance's."""
    return _WRITE_INSTANCE.add_cte(cte).where(sa.exists(sa.select(cte.c[0])))


_INSERT_TASKS = sa.insert(HumanTask.__table__).returning(HumanTask.__table__.c.id, sort_by_parameter_order=True)
_INSERT_CANDIDATES = sa.insert(TaskCandidate.__table__)
# Batch starts (start_instances): instances with their ids back in parameter order, timers.
_INSERT_INSTANCES = sa.insert(_instances).returning(_instances.c.id, sort_by_parameter_order=True)
_INSERT_TIMERS = sa.insert(Timer.__table__)
# Events without data keep SQL NULL (a plain JSON bind would store the JSON text 'null').
_INSERT_EVENTS = sa.insert(InstanceEvent.__table__).values(data=sa.bindparam("data", type_=sa.JSON(none_as_null=True)))
_INSERT_EVENTS_RETURNING = _INSERT_EVENTS.returning(InstanceEvent.__table__.c.id, sort_by_parameter_order=True)


class TaskWrite:
    """The completing write of a submitted task, for apply_outcome to put in front of the instance's write in
    the same statement on PostgreSQL (the task changes only if its version and state are still as read)."""

    __slots__ = ("task_id", "old_version", "user_id", "submitted")

    def __init__(self, task_id: int, old_version: int, user_id: int, submitted: dict):
        self.task_id, self.old_version, self.user_id, self.submitted = task_id, old_version, user_id, submitted


def apply_outcome(instance: ProcessInstance, process: CompiledProcess, outcome: Outcome,
                  events: list[InstanceEvent], expected_version: int | None,
                  open_tasks: list[HumanTask] | None = None, finished_task_id: int | None = None,
                  instance_write: tuple | None = None, task_write: TaskWrite | None = None) -> None:
    """Write an engine outcome: the instance (version-guarded), new/cancelled tasks, timers, events.

    `open_tasks` are the instance's open tasks as read before the engine ran; when None they are read here.
    `instance_write` is (statement, extra parameters) replacing the plain instance UPDATE: one built with
    `instance_write_guarded_by`, which writes another guarded row in the same statement.
    `task_write` (a submit on PostgreSQL): the finished task's write, the instance's, the cancelled and new
    tasks, their candidates and the events all go in one statement (see _one_statement), one round trip
    where there would be five; an outcome with timers takes the general path.
    Raises Conflict when another request changed the instance in between.
    """
    now = utcnow()
    state = outcome.status
    if instance.state == "suspended" and state == "running":
        state = "suspended"
    values = dict(
        workflow=outcome.state, state=state, current_elements=outcome.current_elements,
        completed_elements=outcome.completed_elements, error_message=outcome.error_message,
        error_element=outcome.error_element,
        ended_at=now if state == "completed" else None,
    )
    in_one_statement = task_write is not None and not outcome.timers and expected_version is not None
    # A new instance on PostgreSQL goes in with everything that comes with it in one statement (no timers).
    start_in_one_statement = expected_version is None and not outcome.timers and \
        db.session.get_bind().dialect.name == "postgresql"
    if expected_version is None:
        instance.starter_id = instance.starter.id if instance.starter else None  # read by the lane resolver
        if not start_in_one_statement:
            _insert_new_instance(instance, values, now)
    elif not in_one_statement:
        statement, extra = instance_write or (_WRITE_INSTANCE, None)
        params = dict(values, instance_id=instance.id, old_version=expected_version, new_version=expected_version + 1)
        if extra:
            params.update(extra)
        result = db.session.connection().execute(statement, params)
        if result.rowcount != 1:
            db.session.rollback()
            raise Conflict("流程实例已被他人更新，请刷新后重试")

    if open_tasks is None:
        open_tasks = list(db.session.scalars(sa.select(HumanTask).where(
            HumanTask.instance_id == instance.id, HumanTask.state.in_(OPEN_TASK_STATES)
        ))) if expected_version is not None else []
    ready_ids = {r.engine_task_id for r in outcome.ready}
    known = {t.engine_task_id for t in open_tasks if t.kind == "user"}
    # Tasks the engine no longer offers (an interrupting timer, termination) are cancelled.
    stale = [t.id for t in open_tasks if t.id != finished_task_id and
             (t.engine_task_id not in ready_ids or t.kind == "sign" and t.parent_task_id == finished_task_id)]
    rows, assignments = [], []
    new = [r for r in outcome.ready if r.engine_task_id not in known]
    if new:
        resolver = AssignmentResolver(instance)
        for ready in new:
            assignment = resolver.resolve(ready.lane, ready.properties, ready.data)
            assignments.append(assignment)
            rows.append(dict(
                instance_id=instance.id, engine_task_id=ready.engine_task_id, element_id=ready.element_id,
                name=ready.name, lane=ready.lane, form_key=ready.form_key, ui_form_key=ready.ui_form_key,
                assignee_id=assignment.assignee_id, due_at=_due(ready.properties, now, ready.data) or ready.due_at,
                kind="user", state="ready", version=1, created_at=now,
            ))
    given = [dict(instance_id=instance.id, task_id=e.task_id, element_id=e.element_id, kind=e.kind,
                  actor_id=e.actor_id, at=e.at or now, data=e.data) for e in events]
    tail = []
    if state == "completed":
        tail.append(dict(instance_id=instance.id, task_id=None, element_id=None, kind="completed", actor_id=None,
                         at=now, data=outcome_of(process.metadata, outcome.data)))
    elif state == "error":
        tail.append(dict(instance_id=instance.id, task_id=None, element_id=outcome.error_element, kind="error",
                         actor_id=None, at=now, data={"message": outcome.error_message}))

    if in_one_statement:
        _one_statement(instance, expected_version, values, task_write, stale, rows, assignments, given, tail, now)
    elif start_in_one_statement:
        _start_in_one_statement(instance, values, rows, assignments, given, tail, now)
    else:
        if stale:
            db.session.execute(
                sa.update(HumanTask).where(HumanTask.id.in_(stale))
                .values(state="cancelled", version=HumanTask.version + 1)
                .execution_options(synchronize_session=False)
            )
        created, ids = [], []
        if rows:
            # Core inserts, not the unit of work: the rows are not needed as objects in this request, and
            # one INSERT … RETURNING per table is what the flush would send anyway, at a fraction of its cost.
            ids = db.session.connection().execute(_INSERT_TASKS, rows).scalars().all()
            candidates = [
                dict(task_id=task_id, user_id=user_id, role_code=role, org_unit_id=unit,
                     claimable=assignment.assignee_id is None)
                for task_id, assignment in zip(ids, assignments, strict=True)
                for (user_id, role, unit) in assignment.candidates
            ]
            if candidates:
                db.session.connection().execute(_INSERT_CANDIDATES, candidates)
            created = [dict(instance_id=instance.id, task_id=task_id, element_id=row["element_id"],
                            kind="task_created", actor_id=None, at=now, data=None)
                       for task_id, row in zip(ids, rows, strict=True)]
        if outcome.timers:
            # A new instance has no timer rows yet; a running one may already wait on some of these.
            waiting = set() if expected_version is None else set(instance_timer_ids(instance))
            fresh = [t for t in outcome.timers if t[0] not in waiting]
            db.session.add_all(Timer(instance_id=instance.id, engine_task_id=tid, element_id=element, due_at=due)
                               for tid, element, due in fresh)
        if expected_version is None:
            # A start answers with the instance's history and tasks: keep what was written.
            history = given + created + tail
            event_ids = db.session.connection().execute(_INSERT_EVENTS_RETURNING, history).scalars().all()
            instance.written = ([_Written(id=event_id, **event) for event_id, event in zip(event_ids, history,
                                                                                           strict=True)],
                                [_Written(id=task_id, **row) for task_id, row in zip(ids, rows, strict=True)])
        else:
            db.session.connection().execute(_INSERT_EVENTS, given + created + tail)
        db.session.flush()

    if expected_version is not None:
        # The row is already written: record the new values as loaded, so no flush writes them again (an
        # instance read with Core for a submit is a plain object: its attributes are simply set).
        written = dict(values, version=expected_version + 1)
        if hasattr(instance, "_sa_instance_state"):
            for name, value in written.items():
                set_committed_value(instance, name, value)
        else:
            instance.__dict__.update(written)


def _insert_new_instance(instance: ProcessInstance, values: dict, now) -> None:
    """Insert a new instance with Core (INSERT … RETURNING id) and attach the object as loaded: the unit of
    work would send the same INSERT after working out what changed, at several times the cost."""
    row = dict(values, definition_id=instance.definition.id, process_version_id=instance.process_version.id,
               title=instance.title, version=1, starter_id=instance.starter.id if instance.starter else None,
               org_unit_id=instance.org_unit_id, subject_id=instance.subject_id, started_at=now)
    instance_id = db.session.connection().execute(_INSERT_INSTANCES, [row]).scalar_one()
    for name, value in dict(row, id=instance_id).items():
        setattr(instance, name, value)
    make_transient_to_detached(instance)
    db.session.add(instance)


# -- a submit's whole write as one PostgreSQL statement ---------------------------------------------------

def _one_statement(instance, expected_version: int, values: dict, task_write: TaskWrite, stale: list[int],
                   rows: list[dict], assignments: list, given: list[dict], tail: list[dict], now) -> None:
    """Write a submit with one statement of data-modifying CTEs: the task's guarded UPDATE, the instance's
    UPDATE guarded by its version and by the task's, then the cancelled tasks, new tasks, their candidates
    and the events, each only if the instance's write happened. When a guard failed the statement fails as a
    whole, so nothing of it stays even on an autocommit connection (hall.transactions): 409. Events keep the
    order the general path writes them in."""
    candidates = [(row["engine_task_id"], user_id, role, unit)
                  for row, assignment in zip(rows, assignments, strict=True)
                  for (user_id, role, unit) in assignment.candidates]
    plain = given + tail
    sql = _one_statement_sql(len(rows), len(candidates), len(given), len(tail), bool(stale))
    params = {
        "task_id": task_write.task_id, "task_old_version": task_write.old_version,
        "task_new_version": task_write.old_version + 1, "user_id": task_write.user_id, "now": now,
        "submitted": jsontext.dumps(task_write.submitted),
        "instance_id": instance.id, "old_version": expected_version, "new_version": expected_version + 1,
        "workflow": jsontext.dumps(values["workflow"]), "state": values["state"],
        "current_elements": jsontext.dumps(values["current_elements"]),
        "completed_elements": jsontext.dumps(values["completed_elements"]),
        "error_message": values["error_message"], "error_element": values["error_element"],
        "ended_at": values["ended_at"], "stale": stale,
    }
    _follow_up_params(params, rows, candidates, plain)
    try:
        rawsql.execute(sql, params)
    except psycopg.errors.DivisionByZero:  # a guard failed (see _one_statement_sql)
        db.session.rollback()
        raise Conflict("流程实例已被他人更新，请刷新后重试") from None


_NEW_TASK_COLUMNS = ("engine_task_id", "element_id", "name", "lane", "form_key", "ui_form_key", "assignee_id",
                     "due_at")
_NEW_TASK_TYPES = ("varchar", "varchar", "varchar", "varchar", "varchar", "varchar", "int", "timestamptz")


def _follow_up_sql(instance: str, guard: str, new_tasks: int, candidates: int, given: int, tail: int,
                   returning: bool) -> list[str]:
    """The CTEs that insert an instance's new tasks, their candidates and its events: *instance* is the SQL
    of its id, *guard* the WHERE that makes them depend on the instance's write."""
    parts = []
    if new_tasks:
        values = ", ".join(
            "(" + ", ".join(f"%(n{i}_{name})s::{kind}" for name, kind in zip(_NEW_TASK_COLUMNS, _NEW_TASK_TYPES,
                                                                              strict=True)) + f", {i})"
            for i in range(new_tasks))
        parts.append(
            "new_tasks AS (INSERT INTO human_tasks (instance_id, engine_task_id, element_id, name, lane, form_key, "
            "ui_form_key, assignee_id, due_at, kind, state, version, created_at) "
            "SELECT " + instance + ", v.engine_task_id, v.element_id, v.name, v.lane, v.form_key, v.ui_form_key, "
            "v.assignee_id, v.due_at, 'user', 'ready', 1, %(now)s "
            f"FROM (VALUES {values}) AS v(" + ", ".join(_NEW_TASK_COLUMNS) + ", ord) "
            + guard + " ORDER BY v.ord RETURNING id, engine_task_id, element_id, assignee_id)")
        if candidates:
            values = ", ".join(f"(%(c{i}_engine_task_id)s::varchar, %(c{i}_user_id)s::int, "
                               f"%(c{i}_role_code)s::varchar, %(c{i}_org_unit_id)s::int)" for i in range(candidates))
            parts.append(
                "new_candidates AS (INSERT INTO task_candidates (task_id, user_id, role_code, org_unit_id, claimable) "
                "SELECT n.id, c.user_id, c.role_code, c.org_unit_id, n.assignee_id IS NULL FROM new_tasks n "
                f"JOIN (VALUES {values}) AS c(engine_task_id, user_id, role_code, org_unit_id) "
                "ON c.engine_task_id = n.engine_task_id)")
    # Events: the given ones (ord 0..), the new tasks' task_created (by task id), then the end or error.
    selects = []
    if given + tail:
        values = ", ".join(
            f"({i if i < given else 2_000_000 + i}, %(e{i}_task_id)s::int, %(e{i}_element_id)s::varchar, "
            f"%(e{i}_kind)s::varchar, %(e{i}_actor_id)s::int, %(e{i}_at)s::timestamptz, %(e{i}_data)s::json)"
            for i in range(given + tail))
        selects.append(f"SELECT * FROM (VALUES {values}) AS e(ord, task_id, element_id, kind, actor_id, at, data)")
    if new_tasks:
        selects.append("SELECT 1000000 + n.id, n.id, n.element_id, 'task_created', NULL::int, "
                       "%(now)s::timestamptz, NULL::json FROM new_tasks n")
    if selects:
        parts.append(
            "new_events AS (INSERT INTO instance_events (instance_id, task_id, element_id, kind, actor_id, at, data) "
            "SELECT " + instance + ", x.task_id, x.element_id, x.kind, x.actor_id, x.at, x.data FROM ("
            + " UNION ALL ".join(selects) + ") AS x " + guard + " ORDER BY x.ord"
            + (" RETURNING id)" if returning else ")"))
    return parts


@functools.lru_cache(maxsize=256)
def _start_statement_sql(new_tasks: int, candidates: int, given: int, tail: int) -> str:
    """A new instance with its first tasks, their candidates and its events in one statement (PostgreSQL),
    answering the new ids: (0, instance id), (1, task id, engine task id) per task, (2, event id) per event."""
    parts = [
        "new_instance AS (INSERT INTO process_instances (definition_id, process_version_id, state, title, workflow, "
        "version, starter_id, org_unit_id, subject_id, current_elements, completed_elements, error_message, "
        "error_element, started_at, ended_at) VALUES (%(definition_id)s, %(process_version_id)s, %(state)s, "
        "%(title)s, %(workflow)s::jsonb, 1, %(starter_id)s::int, %(org_unit_id)s::int, %(subject_id)s::int, "
        "%(current_elements)s::json, %(completed_elements)s::json, %(error_message)s, %(error_element)s, "
        "%(now)s, %(ended_at)s::timestamptz) RETURNING id)",
    ]
    parts += _follow_up_sql("(SELECT id FROM new_instance)", "", new_tasks, candidates, given, tail, returning=True)
    answer = ["SELECT 0 AS kind, id, NULL::varchar AS engine_task_id FROM new_instance"]
    if new_tasks:
        answer.append("SELECT 1, id, engine_task_id FROM new_tasks")
    if given + tail or new_tasks:
        answer.append("SELECT 2, id, NULL FROM new_events")
    return "WITH " + ", ".join(parts) + " " + " UNION ALL ".join(answer) + " ORDER BY 1, 2"


def _start_in_one_statement(instance: ProcessInstance, values: dict, rows: list[dict], assignments: list,
                            given: list[dict], tail: list[dict], now) -> None:
    """Insert a new instance and everything that comes with it in one statement; attach the instance object
    as loaded and keep the written history and tasks for the answer (as the general path does)."""
    candidates = [(row["engine_task_id"], user_id, role, unit)
                  for row, assignment in zip(rows, assignments, strict=True)
                  for (user_id, role, unit) in assignment.candidates]
    plain = given + tail
    head = dict(values, definition_id=instance.definition.id, process_version_id=instance.process_version.id,
                title=instance.title, starter_id=instance.starter.id if instance.starter else None,
                org_unit_id=instance.org_unit_id, subject_id=instance.subject_id)
    params = dict(head, now=now, workflow=jsontext.dumps(values["workflow"]),
                  current_elements=jsontext.dumps(values["current_elements"]),
                  completed_elements=jsontext.dumps(values["completed_elements"]))
    _follow_up_params(params, rows, candidates, plain)
    answer = rawsql.execute(_start_statement_sql(len(rows), len(candidates), len(given), len(tail)), params).fetchall()
    instance_id = next(row_id for kind, row_id, _ in answer if kind == 0)
    task_ids = {engine_task_id: row_id for kind, row_id, engine_task_id in answer if kind == 1}
    event_ids = [row_id for kind, row_id, _ in answer if kind == 2]
    for name, value in dict(head, id=instance_id, version=1, started_at=now).items():
        setattr(instance, name, value)
    make_transient_to_detached(instance)
    db.session.add(instance)
    tasks = [dict(row, instance_id=instance_id, id=task_ids[row["engine_task_id"]]) for row in rows]
    created = [dict(instance_id=instance_id, task_id=task["id"], element_id=task["element_id"], kind="task_created",
                    actor_id=None, at=now, data=None) for task in sorted(tasks, key=lambda t: t["id"])]
    history = [dict(event, instance_id=instance_id) for event in given] + created + \
        [dict(event, instance_id=instance_id) for event in tail]
    instance.written = ([_Written(id=event_id, **event) for event_id, event in zip(event_ids, history, strict=True)],
                        [_Written(**task) for task in tasks])


def _follow_up_params(params: dict, rows: list[dict], candidates: list[tuple], events: list[dict]) -> None:
    for i, row in enumerate(rows):
        params.update({f"n{i}_{name}": row[name] for name in _NEW_TASK_COLUMNS})
    for i, (engine_task_id, user_id, role, unit) in enumerate(candidates):
        params.update({f"c{i}_engine_task_id": engine_task_id, f"c{i}_user_id": user_id, f"c{i}_role_code": role,
                       f"c{i}_org_unit_id": unit})
    for i, event in enumerate(events):
        params.update({f"e{i}_{name}": event[name] for name in ("task_id", "element_id", "kind", "actor_id", "at")})
        params[f"e{i}_data"] = jsontext.dumps(event["data"]) if event["data"] is not None else None


@functools.lru_cache(maxsize=256)
def _one_statement_sql(new_tasks: int, candidates: int, given: int, tail: int, stale: bool) -> str:
    """The statement of _one_statement for one shape (how many new tasks, candidates and events), built once
    per shape. Parameters are typed where a VALUES list would otherwise leave PostgreSQL guessing.

    It ends with `SELECT 1 / count(*) FROM instance_done`: when a guard failed (the task or the instance
    changed since it was read), the instance's row is not written and the division by zero fails the whole
    statement, the task's UPDATE in front of it included; a statement is atomic, so this holds without a
    transaction around it."""
    parts = [
        "task_done AS (UPDATE human_tasks SET state = 'completed', version = %(task_new_version)s, "
        "completed_by_id = %(user_id)s, assignee_id = %(user_id)s, completed_at = %(now)s, "
        "submitted = %(submitted)s::json, draft = NULL "
        "WHERE id = %(task_id)s AND version = %(task_old_version)s AND state = 'ready' RETURNING id)",
        "instance_done AS (UPDATE process_instances SET version = %(new_version)s, workflow = %(workflow)s::jsonb, "
        "state = %(state)s, current_elements = %(current_elements)s::json, "
        "completed_elements = %(completed_elements)s::json, error_message = %(error_message)s, "
        "error_element = %(error_element)s, ended_at = %(ended_at)s::timestamptz "
        "WHERE id = %(instance_id)s AND version = %(old_version)s AND EXISTS (SELECT 1 FROM task_done) "
        "RETURNING id)",
    ]
    if stale:
        parts.append("cancelled AS (UPDATE human_tasks SET state = 'cancelled', version = version + 1 "
                     "WHERE id = ANY(%(stale)s) AND EXISTS (SELECT 1 FROM instance_done))")
    parts += _follow_up_sql("%(instance_id)s", "WHERE EXISTS (SELECT 1 FROM instance_done)", new_tasks, candidates,
                            given, tail, returning=False)
    return "WITH " + ", ".join(parts) + " SELECT 1 / count(*) FROM instance_done"


def instance_timer_ids(instance: ProcessInstance) -> list[str]:
    """Engine task ids of the unfired timers this instance already has rows for."""
    return list(db.session.scalars(sa.select(Timer.engine_task_id).where(
        Timer.instance_id == instance.id, Timer.fired_at.is_(None)
    )))


def _due(properties: dict, now: datetime, data: dict | None = None) -> datetime | None:
    """A due time from the task's `dueDateVariable` (a dotted path to an ISO date/datetime in its data,
    e.g. "deadlines.target") or its `dueInDays` / `dueInHours` property; with both, the later of the two,
    so that a step arriving after its date still gets that long (销假 of a leave approved after it ended)."""
    try:
        due = None
        if properties.get("dueDateVariable"):
            value = data or {}
            for part in properties["dueDateVariable"].split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str) and value:
                due = datetime.fromisoformat(value)
                due = due if due.tzinfo else due.replace(tzinfo=UTC)
        relative = None
        if properties.get("dueInDays"):
            relative = now + timedelta(days=float(properties["dueInDays"]))
        elif properties.get("dueInHours"):
            relative = now + timedelta(hours=float(properties["dueInHours"]))
    except ValueError:
        return None
    if due is not None and relative is not None:
        return max(due, relative)
    return due or relative


def can_see_instance(instance: ProcessInstance, user: User) -> bool:
    """The starter, administrators, roles the definition names in `visibleTo`, the heads of the department
    whose subtree holds the instance's unit, and whoever holds, held or may claim one of its tasks."""
    if instance.starter_id == user.id or user.is_admin:
        return True
    roles = user.role_codes
    if roles & set(instance.definition.visible_to or ()):
        return True
    heads = head_unit_ids(user)
    if heads and instance.org_unit_id is not None and db.session.scalar(
            sa.select(sa.literal(1)).select_from(OrgUnit).where(OrgUnit.id == instance.org_unit_id,
                                                                _under_any(heads))):
        return True
    return bool(db.session.scalar(
        sa.select(sa.literal(1)).select_from(HumanTask)
        .outerjoin(TaskCandidate, TaskCandidate.task_id == HumanTask.id)
        .where(HumanTask.instance_id == instance.id, sa.or_(
            HumanTask.assignee_id == user.id, HumanTask.completed_by_id == user.id,
            TaskCandidate.user_id == user.id, *role_terms(user),
        )).limit(1)
    ))


def _involved_in(user: User):
    """The ids of the instances the user took part in: a task assigned to them, completed by them, or offered
    to them by name or through a role they hold (in their unit or anywhere). A union of index range scans,
    one per way (an OR across tasks joined to their candidate rows made the database join every task with
    its candidates: half a second per page at 1,000,000 tasks)."""
    offered = sa.select(HumanTask.instance_id).join(TaskCandidate, TaskCandidate.task_id == HumanTask.id)
    return [
        sa.select(HumanTask.instance_id).where(HumanTask.assignee_id == user.id),
        sa.select(HumanTask.instance_id).where(HumanTask.completed_by_id == user.id),
        offered.where(TaskCandidate.user_id == user.id),
        *(offered.where(*conditions) for conditions in _role_offers(user)),
    ]


def _role_offers(user: User) -> list[tuple]:
    """Each way a candidate row offers its task to a role the user holds, as the conditions of one index
    range: the role in the membership's unit or college-wide; a role held college-wide, in every unit."""
    found = []
    for role, unit in {(m.role_code, m.org_unit_id) for m in user.memberships}:
        is_role = TaskCandidate.role_code == role
        if unit is None:
            found.append((is_role,))
        else:
            found += [(is_role, TaskCandidate.org_unit_id.is_(None)), (is_role, TaskCandidate.org_unit_id == unit)]
    return found


def role_terms(user: User) -> list:
    """Conditions on TaskCandidate, to be OR-ed: the row offers its task to a role the user holds (see
    _role_offers)."""
    return [sa.and_(*conditions) for conditions in _role_offers(user)]


def _under_any(unit_ids: list[int]):
    """A condition on OrgUnit: the unit lies in the subtree of one of *unit_ids* (materialized paths)."""
    return sa.or_(*(OrgUnit.path.like(f"%/{unit_id}/%") for unit_id in unit_ids))


def get_instance(instance_id: int, user: User) -> ProcessInstance:
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None or not can_see_instance(instance, user):
        raise NotFound(f"流程实例 {instance_id} 不存在")
    return instance


def outcome_of(metadata: dict, data: dict) -> dict | None:
    """The result of a finished instance, as its diagram names it: the process property `outcomeVariable`
    lists variables (the first one set wins, e.g. the last approver's decision first) and `outcomeLabels`
    labels their values (`approve:同意,reject:不同意`). Kept in the data of the instance's `completed` event,
    which is written anyway, so a submit costs no statement more. None when the diagram names none."""
    names = [n.strip() for n in (metadata.get("outcomeVariable") or "").split(",") if n.strip()]
    value = next((data[n] for n in names if data.get(n) is not None), None)
    if value is None:
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value)
    labels = dict(pair.split(":", 1) for pair in (metadata.get("outcomeLabels") or "").split(",") if ":" in pair)
    return {"outcome": value, "outcome_label": labels.get(text, text).strip()}


def outcome_in(history) -> dict | None:
    """The result kept in an instance's `completed` event ({"outcome", "outcome_label"}), if it has one."""
    return next((e.data for e in history if e.kind == "completed" and isinstance(e.data, dict)
                 and e.data.get("outcome_label")), None)


def outcome_labels(instance_ids: list[int]) -> dict[int, str]:
    """The outcome labels of those of the instances that finished with one (see outcome_of), in one query."""
    if not instance_ids:
        return {}
    rows = db.session.execute(sa.select(InstanceEvent.instance_id, InstanceEvent.data).where(
        InstanceEvent.instance_id.in_(instance_ids), InstanceEvent.kind == "completed"))
    return {i: data["outcome_label"] for i, data in rows if isinstance(data, dict) and data.get("outcome_label")}


# The events after which the engine runs on and may create tasks: the task that follows one of them was
# created by it.
_ADVANCES = ("started", "task_completed", "returned", "timer_fired", "retried")


def created_by_return(history, task_id: int) -> InstanceEvent | None:
    """The `returned` event that created task *task_id* (退回: the step done just before the task appeared
    was a return), from an instance's history in order; None when the task came the ordinary way."""
    cause = None
    for event in history:
        if event.kind in _ADVANCES:
            cause = event
        elif event.kind == "task_created" and event.task_id == task_id:
            return cause if cause is not None and cause.kind == "returned" else None
    return None


def returned_task_ids(tasks) -> set[int]:
    """Which of *tasks* (a page of a task list) were created by a 退回, in one query over their instances'
    step events (instance_events is indexed by instance)."""
    wanted = {t.id for t in tasks if t.state == "ready"}
    if not wanted:
        return set()
    rows = db.session.execute(
        sa.select(InstanceEvent.instance_id, InstanceEvent.task_id, InstanceEvent.kind)
        .where(InstanceEvent.instance_id.in_({t.instance_id for t in tasks if t.id in wanted}),
               InstanceEvent.kind.in_(("task_created", *_ADVANCES)))
        .order_by(InstanceEvent.id))
    by_instance: dict[int, list] = {}
    for row in rows:
        by_instance.setdefault(row.instance_id, []).append(row)
    return {t.id for t in tasks if t.id in wanted and created_by_return(by_instance.get(t.instance_id, []), t.id)}


def instance_history(instance: ProcessInstance) -> list[InstanceEvent]:
    return list(db.session.scalars(
        sa.select(InstanceEvent).where(InstanceEvent.instance_id == instance.id).order_by(InstanceEvent.id)
    ))


def instance_tasks(instance: ProcessInstance) -> list[HumanTask]:
    return list(db.session.scalars(
        sa.select(HumanTask).where(HumanTask.instance_id == instance.id).order_by(HumanTask.id)
    ))


def list_instances(user: User, definition: str | None = None, state: str | None = None,
                   starter: str | None = None, org_unit: int | None = None, since: datetime | None = None,
                   until: datetime | None = None, page: int = 1, page_size: int = 20):
    """Instances the user may see: administrators all, others the ones they started or took part in."""
    query = sa.select(ProcessInstance)
    if definition:
        query = query.join(ProcessDefinition).where(ProcessDefinition.key == definition)
    if state:
        query = query.where(ProcessInstance.state == state)
    if starter:
        query = query.join(User, User.id == ProcessInstance.starter_id).where(User.username == starter)
    if org_unit:
        query = query.where(ProcessInstance.org_unit_id == org_unit)
    if since:
        query = query.where(ProcessInstance.started_at >= since)
    if until:
        query = query.where(ProcessInstance.started_at < until)
    if not user.is_admin:
        # What the user may see, as one union of id sets, each read by an index: the instances they started,
        # took part in, of the units they head, and of the processes whose instances their roles may read.
        instances = ProcessInstance.__table__
        seen = [sa.select(instances.c.id).where(instances.c.starter_id == user.id), *_involved_in(user)]
        heads = head_unit_ids(user)
        if heads:
            seen.append(sa.select(instances.c.id).where(
                instances.c.org_unit_id.in_(sa.select(OrgUnit.id).where(_under_any(heads)))))
        roles = user.role_codes
        readable = [d.id for d in db.session.scalars(sa.select(ProcessDefinition))
                    if roles & set(d.visible_to or ())]
        if readable:
            seen.append(sa.select(instances.c.id).where(instances.c.definition_id.in_(readable)))
        query = query.where(ProcessInstance.id.in_(sa.union(*seen)))
    # The ids in list order first, up to a few thousand: most people see fewer, and then those ids give the
    # total and the page without a second pass over what they may see. Past that (and for administrators,
    # who see everything), a count and the page.
    offset = (page - 1) * page_size
    ids = None if user.is_admin else db.session.scalars(
        query.with_only_columns(ProcessInstance.id).order_by(ProcessInstance.id.desc()).limit(_LISTED_IDS + 1)).all()
    if ids is not None and len(ids) <= _LISTED_IDS:
        total, page_ids = len(ids), ids[offset:offset + page_size]
        if not page_ids:
            return [], total
        page_query = sa.select(ProcessInstance).where(ProcessInstance.id.in_(page_ids))
    else:
        total = db.session.scalar(sa.select(sa.func.count()).select_from(
            query.with_only_columns(ProcessInstance.id).subquery()))
        page_query = query.limit(page_size).offset(offset)
    items = db.session.scalars(page_query.order_by(ProcessInstance.id.desc()).options(*_INSTANCE_LIST_LOADS)).all()
    return items, total


_LISTED_IDS = 5000


# What an instance list shows, in the page's statement: its process, version number and starter (a statement
# per instance and person before); the state document and the starter's memberships are not read.
_INSTANCE_LIST_LOADS = (
    defer(ProcessInstance.workflow),
    joinedload(ProcessInstance.definition, innerjoin=True),
    joinedload(ProcessInstance.process_version, innerjoin=True).load_only(ProcessVersion.id, ProcessVersion.number),
    joinedload(ProcessInstance.starter).lazyload(User.memberships),
)


# -- administration ----------------------------------------------------------------------------------

def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("只有系统管理员可以执行此操作")


# What the domains that start processes for their own records do when such an instance is terminated, in the
# terminating transaction (e.g. quality: its warning goes back to open). A hook gets the instance id.
TERMINATION_HOOKS: list = []


def on_terminated(func):
    """Register *func(instance_id)* to run when an instance is terminated or withdrawn."""
    TERMINATION_HOOKS.append(func)
    return func


def _set_state(instance_id: int, user: User, allowed_from: tuple, new_state: str, kind: str,
               data: dict | None = None) -> ProcessInstance:
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"流程实例 {instance_id} 不存在")
    if instance.state not in allowed_from:
        raise Conflict(f"流程实例当前状态为 {instance.state}，不能执行此操作")
    result = db.session.execute(
        sa.update(ProcessInstance)
        .where(ProcessInstance.id == instance.id, ProcessInstance.version == instance.version)
        .values(state=new_state, version=instance.version + 1,
                ended_at=utcnow() if new_state == "terminated" else None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict("流程实例已被他人更新，请刷新后重试")
    if new_state == "terminated":
        db.session.execute(
            sa.update(HumanTask).where(HumanTask.instance_id == instance.id, HumanTask.state.in_(OPEN_TASK_STATES))
            .values(state="cancelled", version=HumanTask.version + 1)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(sa.update(Timer).where(Timer.instance_id == instance.id, Timer.fired_at.is_(None))
                           .values(fired_at=utcnow()))
        # What a domain started the instance for (a warning, a cycle unit) must not stay tied to a dead process.
        for hook in TERMINATION_HOOKS:
            hook(instance.id)
    db.session.add(InstanceEvent(instance_id=instance.id, kind=kind, actor_id=user.id, data=data))
    db.session.commit()
    db.session.refresh(instance)
    return instance


def suspend_instance(instance_id: int, user: User) -> ProcessInstance:
    _require_admin(user)
    return _set_state(instance_id, user, ("running", "error"), "suspended", "suspended")


def resume_instance(instance_id: int, user: User) -> ProcessInstance:
    _require_admin(user)
    instance = db.session.get(ProcessInstance, instance_id)
    target = "error" if instance is not None and instance.error_message else "running"
    return _set_state(instance_id, user, ("suspended",), target, "resumed")


def terminate_instance(instance_id: int, user: User, reason: str | None = None) -> ProcessInstance:
    _require_admin(user)
    return _set_state(instance_id, user, ("running", "suspended", "error"), "terminated", "terminated",
                      {"reason": reason} if reason else None)


def retry_instance(instance_id: int, user: User, data: dict | None = None) -> ProcessInstance:
    """Run the failed step again, optionally after merging corrected data into it."""
    _require_admin(user)
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"流程实例 {instance_id} 不存在")
    if instance.state != "error":
        raise Conflict("只有出错的流程实例可以重试")
    version = db.session.get(ProcessVersion, instance.process_version_id)
    process = registry.compiled(version)
    outcome = registry.engine().retry(process, instance.workflow, data)
    events = [InstanceEvent(instance_id=instance.id, kind="retried", actor_id=user.id,
                            element_id=instance.error_element, data=data or None)]
    apply_outcome(instance, process, outcome, events, expected_version=instance.version)
    db.session.commit()
    db.session.refresh(instance)
    return instance


def may_withdraw(instance: ProcessInstance) -> bool:
    """撤销 is for applications a person started from the service catalogue; a process the hall starts on
    someone's behalf (warning handling, a diagnosis cycle: not in the catalogue) is not theirs to take back."""
    return bool(instance.definition.in_catalogue)


def withdraw_instance(instance_id: int, user: User) -> ProcessInstance:
    """撤销: the starter takes back an application nobody else has acted on yet."""
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None or instance.starter_id != user.id:
        raise NotFound(f"流程实例 {instance_id} 不存在或不是您发起的")
    if not may_withdraw(instance):
        raise Conflict("此流程由系统代为发起（如预警处置、诊改），不能撤销；如需终止请联系质量管理办公室")
    acted = db.session.scalar(sa.select(sa.func.count()).select_from(InstanceEvent).where(
        InstanceEvent.instance_id == instance.id,
        InstanceEvent.kind.in_(("task_completed", "claimed", "transferred", "signer_added", "returned")),
        InstanceEvent.actor_id != user.id,
    ))
    if acted:
        raise Conflict("已有人处理此申请，不能撤销")
    if instance.state == "suspended":  # an administrator holds it: that decision is theirs to lift
        raise Conflict("此申请已被管理员暂停，暂不能撤销")
    return _set_state(instance_id, user, ("running",), "terminated", "withdrawn")


def urge_instance(instance_id: int, user: User) -> InstanceEvent:
    """催办: the starter reminds the people holding the open tasks; at most once a day."""
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None or instance.starter_id != user.id:
        raise NotFound(f"流程实例 {instance_id} 不存在或不是您发起的")
    if instance.state != "running":
        raise Conflict("只有进行中的申请可以催办")
    recent = db.session.scalar(sa.select(sa.func.count()).select_from(InstanceEvent).where(
        InstanceEvent.instance_id == instance.id, InstanceEvent.kind == "urged",
        InstanceEvent.at >= utcnow() - timedelta(days=1),
    ))
    if recent:
        raise HallError("今天已经催办过了，请明天再试", code=429)
    open_tasks = db.session.scalars(sa.select(HumanTask).where(
        HumanTask.instance_id == instance.id, HumanTask.state.in_(OPEN_TASK_STATES))).all()
    event = InstanceEvent(instance_id=instance.id, kind="urged", actor_id=user.id,
                          data={"tasks": [t.id for t in open_tasks]})
    db.session.add(event)
    db.session.commit()
    return event


# -- timers ------------------------------------------------------------------------------------------

def fire_due_timers(now: datetime | None = None, limit: int = 200) -> int:
    """Advance every instance with a due timer; returns how many instances moved."""
    now = now or utcnow()
    due = db.session.execute(
        sa.select(Timer.id, Timer.instance_id).where(Timer.fired_at.is_(None), Timer.due_at <= now)
        .order_by(Timer.due_at).limit(limit)
    ).all()
    db.session.rollback()
    by_instance: dict[int, list[int]] = {}
    for timer_id, instance_id in due:
        by_instance.setdefault(instance_id, []).append(timer_id)
    moved = 0
    for instance_id, timer_ids in by_instance.items():
        try:
            if _fire_instance_timers(instance_id, timer_ids):
                moved += 1
        except Conflict:
            continue  # somebody else moved it; the timer stays due and is tried on the next tick
    return moved


def _fire_instance_timers(instance_id: int, timer_ids: list[int]) -> bool:
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None or instance.state != "running":
        db.session.execute(sa.update(Timer).where(Timer.id.in_(timer_ids)).values(fired_at=utcnow()))
        db.session.commit()
        return False
    version = db.session.get(ProcessVersion, instance.process_version_id)
    process = registry.compiled(version)
    outcome = registry.engine().fire_timers(process, instance.workflow)
    still_waiting = {t[0] for t in outcome.timers}
    timers = db.session.scalars(sa.select(Timer).where(Timer.id.in_(timer_ids))).all()
    events = []
    for timer in timers:
        if timer.engine_task_id not in still_waiting:
            timer.fired_at = utcnow()
            events.append(InstanceEvent(instance_id=instance.id, kind="timer_fired", element_id=timer.element_id))
    apply_outcome(instance, process, outcome, events, expected_version=instance.version)
    db.session.commit()
    return True


def parse_json_object(raw: str | bytes | None, what: str) -> dict:
    if raw in (None, "", b""):
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest(f"{what} 不是有效的 JSON") from None
    if not isinstance(value, dict):
        raise Invalid(f"{what} 应为 JSON 对象")
    return value
