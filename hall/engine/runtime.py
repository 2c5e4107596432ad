"""Compile diagrams into specs and run instances: start, complete a user task, fire timers, retry.

Each call works on its own deserialized copy of the instance and returns an Outcome: the new state
document and the projection the hall stores beside it (ready user tasks, timers, positions, errors).
Nothing here touches the database: the caller writes the outcome in one short transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from hall.engine import serializer
from hall.engine.sandbox import HallScriptEngine, ScriptRefused, _compile
from hall.engine.services import OPERATORS
from hall.engine.validation import (
    SPIFF,
    DiagramRefused,
    Problem,
    check_call_activities,
    check_definitions,
    normalise_timers,
    parse_xml,
    schema_problem,
)

# SpiffWorkflow's task tree is limited in depth (~1000); a gateway loop past ~250 rounds ends the
# workflow silently as "completed". The hall fails the instance well before that.
MAX_TREE_DEPTH = 900
_OPEN_STATES = (TaskState.READY, TaskState.WAITING, TaskState.STARTED)  # what the loop guard looks at
FORM_PROPERTIES = ("formJsonSchemaFilename", "formUiSchemaFilename")


class InstanceFailed(Exception):
    """A run stopped on an error that belongs to the instance (script, service, loop guard)."""

    def __init__(self, message: str, element_id: str | None):
        super().__init__(message)
        self.message = message
        self.element_id = element_id


@dataclass
class UserTaskSpec:
    element_id: str
    name: str
    lane: str | None
    form_key: str | None
    ui_form_key: str | None
    properties: dict
    documentation: str | None = None


@dataclass
class CompiledProcess:
    key: str
    name: str
    content_hash: str
    spec: object
    subprocess_specs: dict
    user_tasks: dict[str, UserTaskSpec]
    forms: dict[str, dict]
    main_file: str
    bpmn_xml: str
    dependencies: dict[str, str]
    # Process-level extension properties: category, description, expectedDays, startableBy, inCatalogue.
    metadata: dict = field(default_factory=dict)


@dataclass
class ReadyTask:
    engine_task_id: str
    element_id: str
    name: str
    lane: str | None
    form_key: str | None
    ui_form_key: str | None
    properties: dict
    data: dict
    # The due time the diagram gives the task: its earliest interrupting timer boundary event, else its
    # earliest non-interrupting one (a reminder), else None.
    due_at: datetime | None = None


@dataclass
class Outcome:
    state: dict
    status: str  # running | completed | error
    ready: list[ReadyTask] = field(default_factory=list)
    timers: list[tuple[str, str, datetime]] = field(default_factory=list)  # engine task id, element, due
    current_elements: list[str] = field(default_factory=list)
    completed_elements: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    error_message: str | None = None
    error_element: str | None = None


def content_hash(files: dict[str, bytes], forms: dict[str, dict]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    for name in sorted(forms):
        digest.update(name.encode() + b"\0" + json.dumps(forms[name], sort_keys=True).encode() + b"\0")
    return digest.hexdigest()


def compile_process(files: dict[str, bytes], forms: dict[str, dict], max_bytes: int = 2 * 1024 * 1024,
                    main_file: str | None = None) -> CompiledProcess:
    """Validate and parse a set of BPMN files (the first, or main_file, holds the process to run)."""
    if not files:
        raise DiagramRefused([Problem("", "", "没有上传 BPMN 文件（no BPMN file）")])
    main_file = main_file or next(iter(files))
    if main_file not in files:
        raise DiagramRefused([Problem(main_file, "", f"指定的主流程文件 {main_file} 未上传（main file not uploaded）")])
    roots = {name: parse_xml(content, name, max_bytes) for name, content in files.items()}
    problems: list[Problem] = []
    for name, root in roots.items():
        problems += check_definitions(root, name, set(OPERATORS))
    problems += check_call_activities(roots)
    if problems:
        raise DiagramRefused(problems)

    parser = SpiffBpmnParser()
    for name, root in roots.items():
        normalise_timers(root)
        try:
            parser.add_bpmn_xml(root, filename=name)
        except ValidationException as err:
            raise DiagramRefused([_problem_from_validation(err, name)]) from None
        except (SpiffWorkflowException, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
            # The parser's own slips on odd diagrams are a refusal of that diagram, never a 500.
            raise DiagramRefused([Problem(name, getattr(err, "id", "") or root.get("id", "") or "",
                                          f"流程引擎无法解析此图：{err.__class__.__name__}: {err}")]) from None
    main_root = roots[main_file]
    main = next(p for p in main_root.findall("{*}process") if p.get("isExecutable") == "true")
    key = main.get("id")
    try:
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except ValidationException as err:
        raise DiagramRefused([_problem_from_validation(err, main_file)]) from None
    except (SpiffWorkflowException, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise DiagramRefused([Problem(main_file, getattr(err, "id", "") or "",
                                      f"流程引擎无法解析此图：{err.__class__.__name__}: {err}")]) from None

    user_tasks: dict[str, UserTaskSpec] = {}
    problems = []
    specs_by_id = {}
    for sp in [spec, *subprocess_specs.values()]:
        for task_spec in sp.task_specs.values():
            specs_by_id.setdefault(task_spec.bpmn_id, []).append(task_spec)
            problems += _check_scripts(task_spec, main_file)
            if not getattr(task_spec, "manual", False) or task_spec.bpmn_id is None:
                continue
            props = dict((getattr(task_spec, "extensions", None) or {}).get("properties", {}))
            form_key, ui_key = props.get("formJsonSchemaFilename"), props.get("formUiSchemaFilename")
            for prop, key_name in zip(FORM_PROPERTIES, (form_key, ui_key), strict=True):
                if key_name and key_name not in forms:
                    problems.append(Problem(main_file, task_spec.bpmn_id,
                                            f"引用的表单文件 {key_name} 未上传（{prop}）"))
            user_tasks[task_spec.bpmn_id] = UserTaskSpec(
                element_id=task_spec.bpmn_id, name=task_spec.bpmn_name or task_spec.bpmn_id, lane=task_spec.lane,
                form_key=form_key, ui_form_key=ui_key, properties=props, documentation=task_spec.documentation,
            )
    problems += _unrun_scripts(roots, specs_by_id)
    for form_name, schema in forms.items():
        if form_name.endswith("uischema.json"):
            continue
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as err:
            problems.append(Problem(form_name, "", f"表单不是有效的 JSON Schema：{schema_problem(err)}"))
    if problems:
        raise DiagramRefused(problems)

    return CompiledProcess(
        key=key, name=main.get("name") or key, content_hash=content_hash(files, forms), spec=spec,
        subprocess_specs=subprocess_specs, user_tasks=user_tasks, forms=forms, main_file=main_file,
        bpmn_xml=files[main_file].decode("utf-8"),
        dependencies={n: c.decode("utf-8") for n, c in files.items() if n != main_file},
        metadata=_process_properties(main),
    )


def _process_properties(process) -> dict:
    props = {}
    for node in process.findall("{*}extensionElements/{*}properties/{*}property"):
        if node.get("name"):
            props[node.get("name")] = node.get("value", "")
    documentation = process.find("{*}documentation")
    if documentation is not None and documentation.text and "description" not in props:
        props["description"] = documentation.text.strip()
    return props


def _problem_from_validation(err: ValidationException, filename: str) -> Problem:
    message = str(err).split("\n")[0]
    return Problem(err.file_name or filename, err.id or "", f"流程引擎拒绝此图：{message}")


def _check_scripts(task_spec, filename: str) -> list[Problem]:
    """Compile every script and condition at deploy, so a syntax error or forbidden construct is seen now."""
    sources = []
    for attr in ("script", "prescript", "postscript"):
        if getattr(task_spec, attr, None):
            sources.append(("exec", getattr(task_spec, attr)))
    for condition, _target in getattr(task_spec, "cond_task_specs", []) or []:
        expression = condition.args[0] if hasattr(condition, "args") else condition
        if isinstance(expression, str) and expression.strip():
            sources.append(("eval", expression))
    problems = []
    for mode, source in sources:
        try:
            _compile(source.strip() if mode == "eval" else source, mode)
        except ScriptRefused as err:
            problems.append(Problem(filename, task_spec.bpmn_id or task_spec.name, str(err)))
    return problems


_PRE_POST = {"preScript": "prescript", "postScript": "postscript"}


def _unrun_scripts(roots: dict, specs_by_id: dict) -> list[Problem]:
    """A preScript or postScript the engine would never run (on an event, a gateway or a flow: SpiffWorkflow
    runs them on tasks and subprocesses only) is refused, so that nobody relies on a script that is silently
    ignored."""
    problems = []
    for name, root in roots.items():
        for script in root.iter(*(f"{{{SPIFF}}}{tag}" for tag in _PRE_POST)):
            owner = script.getparent().getparent() if script.getparent() is not None else None
            if owner is None or not (script.text or "").strip():
                continue
            element_id = owner.get("id", "")
            tag = script.tag.rsplit("}", 1)[-1]
            # Any spec of the element that runs it will do (a multi-instance task has a wrapper and the
            # task run for each instance; the scripts may sit on the latter).
            if not any(getattr(spec, _PRE_POST[tag], None) for spec in specs_by_id.get(element_id, ())):
                problems.append(Problem(name, element_id, f"此元素不运行 {tag}：前置/后置脚本只能写在任务或子流程上"
                                                          f"（{tag} is only run on tasks and subprocesses）"))
    return problems


class Engine:
    """Runs compiled processes. One per app; safe to share across threads (no per-run state)."""

    def __init__(self, script_steps: int = 200_000, script_seconds: float = 1.0):
        self.script_engine = HallScriptEngine(steps=script_steps, seconds=script_seconds)

    # -- public operations -------------------------------------------------------------------------

    def start(self, process: CompiledProcess, data: dict) -> Outcome:
        workflow = BpmnWorkflow(process.spec, process.subprocess_specs, script_engine=self.script_engine)
        workflow.data.update(_plain(data))
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(_plain(data))
        return self._advance(process, workflow)

    def complete(self, process: CompiledProcess, state: dict, engine_task_id: str, data: dict,
                 check: Callable[[dict], None] | None = None) -> Outcome:
        """Complete a ready user task with *data*; *check*, when given, is called first with the data the task
        sees (a copy) and may refuse the submission by raising."""
        workflow = self.load(process, state)
        task = workflow.get_task_from_id(UUID(engine_task_id))
        if task is None or task.state != TaskState.READY or not task.task_spec.manual:
            raise LookupError("task is not ready")
        if check is not None:
            check(dict(task.data))
        task.data.update(_plain(data))
        return self._advance(process, workflow, task)

    def fire_timers(self, process: CompiledProcess, state: dict) -> Outcome:
        workflow = self.load(process, state)
        return self._advance(process, workflow)

    def retry(self, process: CompiledProcess, state: dict, data: dict | None = None) -> Outcome:
        """Run the failed tasks again (after an administrator fixed the data)."""
        workflow = self.load(process, state)
        failed = workflow.get_tasks(state=TaskState.ERROR)
        for task in failed:
            if data:
                task.data.update(_plain(data))
            task._set_state(TaskState.READY)
        return self._advance(process, workflow)

    def update_data(self, process: CompiledProcess, state: dict, data: dict) -> dict:
        workflow = self.load(process, state)
        workflow.data.update(_plain(data))
        return serializer.dump(workflow)

    def load(self, process: CompiledProcess, state: dict) -> BpmnWorkflow:
        return serializer.load(state, process.spec, process.subprocess_specs, self.script_engine)

    # -- internals ---------------------------------------------------------------------------------

    def _advance(self, process: CompiledProcess, workflow: BpmnWorkflow, task=None) -> Outcome:
        try:
            if task is not None:
                task.run()
            workflow.refresh_timers()
            workflow.do_engine_steps(did_complete_task=self._guard_task)
        except InstanceFailed as err:
            return self._outcome(process, workflow, error=err)
        except (WorkflowException, SpiffWorkflowException, RecursionError) as err:
            return self._outcome(process, workflow, error=_as_failure(err))
        return self._outcome(process, workflow)

    @staticmethod
    def _guard_task(task) -> None:
        # Checked after every engine step, so a loop of gateways and scripts stops here too.
        if task.depth > MAX_TREE_DEPTH:
            raise InstanceFailed(
                f"流程循环次数过多（任务树深度 {task.depth}），已停止以免引擎静默结束"
                f"（loop guard: task tree depth {task.depth} exceeds {MAX_TREE_DEPTH}）",
                task.task_spec.bpmn_id,
            )

    @staticmethod
    def _too_deep(tasks: list) -> InstanceFailed | None:
        """The loop guard once the engine stopped: a task left ready, waiting or started too deep in the tree."""
        for task in tasks:
            if task.state in _OPEN_STATES and task.depth > MAX_TREE_DEPTH:
                return InstanceFailed(
                    f"流程循环次数过多（任务树深度 {task.depth}），已停止以免引擎静默结束"
                    f"（loop guard: task tree depth {task.depth} exceeds {MAX_TREE_DEPTH}）",
                    task.task_spec.bpmn_id,
                )
        return None

    def _outcome(self, process: CompiledProcess, workflow: BpmnWorkflow, error: InstanceFailed | None = None):
        tasks = workflow.get_tasks()  # one walk of the tree for the loop guard and the outcome
        if error is None:
            error = self._too_deep(tasks)
        ready, timers, current, completed = [], [], [], []
        seen_completed = set()
        for task in tasks:
            spec = task.task_spec
            element = spec.bpmn_id
            if element is None:
                continue
            state = task.state
            if state == TaskState.COMPLETED:
                if element not in seen_completed:
                    seen_completed.add(element)
                    completed.append(element)
            elif state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED, TaskState.ERROR):
                if element not in current:
                    current.append(element)
                if state == TaskState.READY and spec.manual and error is None:
                    meta = process.user_tasks.get(element)
                    ready.append(ReadyTask(
                        engine_task_id=str(task.id), element_id=element,
                        name=meta.name if meta else (spec.bpmn_name or element),
                        lane=meta.lane if meta else spec.lane,
                        form_key=meta.form_key if meta else None,
                        ui_form_key=meta.ui_form_key if meta else None,
                        properties=meta.properties if meta else {},
                        data=task.data,
                        due_at=_boundary_timer_due(task),
                    ))
                if state == TaskState.WAITING:
                    due = _timer_due(task)
                    if due is not None:
                        timers.append((str(task.id), element, due))
        if error is not None:
            status = "error"
        elif workflow.is_completed():
            status = "completed"
        else:
            status = "running"
        return Outcome(
            state=serializer.dump(workflow), status=status, ready=ready, timers=timers,
            current_elements=current if status != "completed" else [], completed_elements=completed,
            data=_last_data(workflow),
            error_message=error.message if error else None, error_element=error.element_id if error else None,
        )


def _last_data(workflow: BpmnWorkflow) -> dict:
    """The instance's data as of its latest finished task (what reports and the next steps see)."""
    if workflow.last_task is not None:
        return workflow.last_task.data
    return workflow.data


def _boundary_timer_due(task) -> datetime | None:
    """The due time from timer boundary events attached to *task* (its waiting siblings under the split)."""
    parent = task.parent
    if parent is None or type(parent.task_spec).__name__ != "BoundaryEventSplit":
        return None
    interrupting, reminders = [], []
    for sibling in parent.children:
        if sibling is task or sibling.state != TaskState.WAITING:
            continue
        due = _timer_due(sibling)
        if due is not None:
            (interrupting if getattr(sibling.task_spec, "cancel_activity", True) else reminders).append(due)
    return min(interrupting or reminders, default=None)


def _timer_due(task) -> datetime | None:
    event_definition = getattr(task.task_spec, "event_definition", None)
    if not isinstance(event_definition, TimerEventDefinition):
        return None
    value = task._get_internal_data("event_value")
    if value is None:
        try:
            event_definition.has_fired(task)  # computes and stores the due time
        except Exception:  # noqa: BLE001 - a bad timer expression is reported when the engine runs it
            return None
        value = task._get_internal_data("event_value")
    try:
        if isinstance(value, dict):  # cycle timers
            return datetime.fromisoformat(value["next"])
        due = TimerEventDefinition.get_datetime(value) if "T" in str(value) and not str(value).startswith("P") \
            else TimerEventDefinition.parse_time_or_duration(value)
        if isinstance(due, datetime):
            return due if due.tzinfo else due.replace(tzinfo=UTC)
    except (ValueError, TypeError):
        return None
    return None


def _as_failure(err: Exception) -> InstanceFailed:
    task = getattr(err, "task", None)
    element = None
    if task is not None:
        element = task.task_spec.bpmn_id or task.task_spec.name
    inner = getattr(err, "exception", None) or err.__cause__
    if isinstance(err, RecursionError):
        message = "流程引擎递归过深（可能存在无网关的循环）（RecursionError）"
    elif isinstance(inner, ScriptRefused):
        message = str(inner)
    elif inner is not None and not isinstance(inner, SpiffWorkflowException):
        message = f"{inner.__class__.__name__}: {inner}"
    else:
        message = str(err).split("\n")[0] or err.__class__.__name__
    return InstanceFailed(message, element)


def _plain(data: dict) -> dict:
    """Task data must stay JSON: refuse anything else early instead of failing at serialization."""
    return json.loads(json.dumps(data or {}, ensure_ascii=False, default=str))

