"""Workflow state as a JSON document without its process spec.

Half of SpiffWorkflow's default document is the spec, which the hall already holds parsed in memory
(one per process version). Leaving it out halves the stored state and the time to restore it.
"""

from __future__ import annotations

from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dict(dct["subprocesses"]), workflow)
        workflow.bpmn_events = self.registry.restore(dct.get("bpmn_events", []))
        return workflow


_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = SpeclessWorkflowConverter
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


def load(dct: dict, spec, subprocess_specs, script_engine) -> BpmnWorkflow:
    dct = dict(dct)
    dct.pop("format", None)
    dct["tasks"] = _parents_first(dct["tasks"], dct["root"])
    dct["subprocesses"] = {
        key: dict(sub, tasks=_parents_first(sub["tasks"], sub["root"]))
        for key, sub in (dct.get("subprocesses") or {}).items()
    }
    workflow = _serializer.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
    workflow.script_engine = script_engine
    return workflow
