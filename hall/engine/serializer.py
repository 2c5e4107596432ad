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


def load(dct: dict, spec, subprocess_specs, script_engine) -> BpmnWorkflow:
    dct = dict(dct)
    dct.pop("format", None)
    workflow = _serializer.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
    workflow.script_engine = script_engine
    return workflow
