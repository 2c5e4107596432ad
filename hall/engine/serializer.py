"""Workflow state as a JSON document without its process spec.

Half of SpiffWorkflow's default document is the spec, which the hall already holds parsed in memory
(one per process version). Leaving it out halves the stored state and the time to restore it.
"""

from __future__ import annotations

import re
from uuid import UUID, SafeUUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task, TaskState
from SpiffWorkflow.util.deep_merge import DeepMerge

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_new_uuid = UUID.__new__
_set = object.__setattr__


class _Uuids(dict):
    """Task ids of one restore: each appears several times in a stored state (the task, its parent's
    children, its children's parent) and parsing a UUID is the largest single cost of a restore, so each
    text is parsed once. One per restore: it lives as long as its workflow (see `__missing__`).

    A canonical text (what str() of a UUID gives, so what every stored state holds) is turned into a UUID
    directly, as UUID(int=...) would make it, without UUID()'s general parsing; anything else goes
    through UUID()."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[int, str] = {}

    def __missing__(self, text: str) -> UUID:
        if len(text) == 36 and _CANONICAL_UUID.fullmatch(text):
            value = _new_uuid(UUID)
            _set(value, "int", int(text.replace("-", ""), 16))
            _set(value, "is_safe", SafeUUID.unknown)
            # The canonical text by the id of its UUID object: writing the state again (the same workflow,
            # same UUID objects) looks it up instead of formatting the UUID anew. The objects stay alive
            # with this memo, so no id() is reused while the workflow holds it. Ids read in another spelling
            # are not kept: they are written as str() writes them.
            self.texts[id(value)] = text
        else:
            value = UUID(text)
        self[text] = value
        return value


_NO_TEXTS: dict = {}


class FastTaskConverter(TaskConverter):
    """SpiffWorkflow's task document, written and read the same way, with task ids parsed once per restore
    and the generic conversion skipped for the empty internal data and data deltas most tasks
    have (tests/engine/test_serializer.py holds both ways against SpiffWorkflow's own converter)."""

    def to_dict(self, task):
        # The root keeps its data; every other task stores what differs from its parent's (as SpiffWorkflow does).
        parent = task.parent
        if parent is None:
            data, delta = task.data, {}
        else:
            mine, theirs = task.data, parent.data
            data = {}
            updates = {key: value for key, value in mine.items() if key not in theirs or theirs[key] != value}
            delta = {"updates": updates,
                     "deletions": [key for key in theirs if key not in mine]}
        internal = task.internal_data
        known = getattr(task.workflow, "_hall_uuid_texts", _NO_TEXTS)
        return {
            "id": known.get(id(task.id)) or str(task.id),
            "parent": (known.get(id(task._parent)) or str(task._parent)) if parent is not None else None,
            "children": [known.get(id(child)) or str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": self.registry.convert(internal) if internal else {},
            "data": data,
            "delta": delta,
            "typename": TASK_TYPENAME,  # what the registry adds to a converted task (SpeclessWorkflowConverter)
        }

    def from_dict(self, dct, workflow, uuids: _Uuids | None = None):
        uuid = uuids.__getitem__ if uuids is not None else UUID  # subprocess tasks come without the memo
        spec = workflow.spec.task_specs.get(dct["task_spec"])
        task = self.target_class(workflow, spec, state=dct["state"], id=uuid(dct["id"]))
        parent = dct["parent"]
        task._parent = uuid(parent) if parent is not None else None
        task._children = [uuid(child) for child in dct["children"]]
        task.last_state_change = dct["last_state_change"]
        task.triggered = dct["triggered"]
        internal = dct["internal_data"]
        task.internal_data = self.registry.restore(internal) if internal else {}
        if isinstance(spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            workflow.top_workflow.event_manager.add_task(task)
        delta = dct.get("delta")
        if delta and task.parent is not None:
            data = DeepMerge.merge({}, task.parent.data)
            updates = delta.get("updates")
            if updates:
                data.update(self.registry.restore(updates))
            for key in delta.get("deletions") or ():
                data.pop(key, None)
        else:
            data = self.registry.restore(dct["data"])
        task.data = data
        return task


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """The top workflow's document without its spec. Its own tasks go straight to the fast task converter
    rather than through the registry's generic dispatch (type lookup, a copy of each task's document, the
    type name added afterwards): the same documents, ~15 % less engine time per submit. A subprocess's
    tasks still take the registry's way."""

    _tasks: FastTaskConverter | None = None

    def _task_converter(self) -> FastTaskConverter:
        if self._tasks is None:
            self._tasks = FastTaskConverter(Task, self.registry)
        return self._tasks

    def to_dict(self, workflow):
        tasks = self._task_converter()
        dct = {
            "data": self.registry.convert(self.registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": {str(task_id): tasks.to_dict(task) for task_id, task in workflow.tasks.items()},
            "root": str(workflow.task_tree.id),
        }
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        restore, uuids = self.registry.restore, _Uuids()
        from_dict = self._task_converter().from_dict
        workflow.tasks = {uuids[key]: from_dict(value, workflow, uuids)
                          if value.get("typename") == TASK_TYPENAME else restore(value, workflow=workflow, uuids=uuids)
                          for key, value in dct["tasks"].items()}
        workflow.task_tree = workflow.tasks.get(uuids[dct["root"]])
        workflow._hall_uuids, workflow._hall_uuid_texts = uuids, uuids.texts  # see _Uuids.__missing__
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dict(dct["subprocesses"]), workflow)
        workflow.bpmn_events = self.registry.restore(dct.get("bpmn_events", []))
        return workflow


TASK_TYPENAME = "Task"  # the registry's name for SpiffWorkflow's Task (its class name)
_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = SpeclessWorkflowConverter
_config[Task] = FastTaskConverter
_serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_config))
FORMAT = "hall-1"


def dump(workflow: BpmnWorkflow) -> dict:
    dct = _serializer.registry.convert(workflow)
    dct["format"] = FORMAT
    return dct


def _parents_first(tasks: dict, root: str) -> dict:
    """Tasks ordered so every parent precedes its children.

    SpiffWorkflow 3.2 stores a task's data as a delta against its parent and rebuilds it from the parent
    while restoring, so the parent must already be restored. JSON text keeps the order tasks were
    written in, but PostgreSQL's JSONB reorders object keys; without this, task data is silently lost.
    """
    ordered: dict = {}
    stack = [root]
    while stack:
        task_id = stack.pop()
        if task_id in ordered or task_id not in tasks:
            continue
        ordered[task_id] = tasks[task_id]
        stack.extend(reversed(tasks[task_id].get("children", [])))
    for task_id, task in tasks.items():  # anything unreachable keeps its place after the tree
        ordered.setdefault(task_id, task)
    return ordered


def _ordered(dct: dict) -> dict:
    """A stored document ready for the registry: without the format mark, every task after its parent."""
    dct = dict(dct)
    dct.pop("format", None)
    dct["tasks"] = _parents_first(dct["tasks"], dct["root"])
    dct["subprocesses"] = {
        key: dict(sub, tasks=_parents_first(sub["tasks"], sub["root"]))
        for key, sub in (dct.get("subprocesses") or {}).items()
    }
    return dct


def load(dct: dict, spec, subprocess_specs, script_engine) -> BpmnWorkflow:
    workflow = _serializer.registry.restore(_ordered(dct), spec=spec, subprocess_specs=subprocess_specs)
    workflow.script_engine = script_engine
    return workflow
