"""Workflow state as a JSON document without its process spec.

Half of SpiffWorkflow's default document is the spec, which the hall already holds parsed in memory
(one per process version). Leaving it out halves the stored state and the time to restore it.
"""

from __future__ import annotations

from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task, TaskState
from SpiffWorkflow.util.deep_merge import DeepMerge


class _Uuids(dict):
    """Task ids of one restore: each appears several times in a stored state (the task, its parent's
    children, its children's parent) and parsing a UUID is the largest single cost of a restore, so each
    text is parsed once. One per restore: nothing outlives the request."""

    def __missing__(self, text: str) -> UUID:
        value = self[text] = UUID(text)
        return value


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
        return {
            "id": str(task.id),
            "parent": str(task._parent) if parent is not None else None,
            "children": [str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": self.registry.convert(internal) if internal else {},
            "data": data,
            "delta": delta,
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
    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        restore, uuids = self.registry.restore, _Uuids()
        workflow.tasks = {uuids[key]: restore(value, workflow=workflow, uuids=uuids)
                          for key, value in dct["tasks"].items()}
        workflow.task_tree = workflow.tasks.get(uuids[dct["root"]])
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dict(dct["subprocesses"]), workflow)
        workflow.bpmn_events = self.registry.restore(dct.get("bpmn_events", []))
        return workflow


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
