"""The hall's stored workflow state (hall/engine/serializer.py) is SpiffWorkflow's task document: the fast
task converter writes exactly what SpiffWorkflow's own TaskConverter writes and reads it back to the same
tasks, for real flows at every step (parallel branches, timers in the internal data, data deleted on the
way) — so states written before it, or by SpiffWorkflow itself, keep loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.task import Task

from hall.engine import Engine, compile_process, serializer
from tests.engine import diagrams

ROOT = Path(__file__).resolve().parents[2]


class _StockTaskConverter(TaskConverter):
    def from_dict(self, dct, workflow, uuids=None):  # the hall's workflow converter offers its id memo: unused
        return super().from_dict(dct, workflow)


def _stock_serializer():
    """The hall's spec-less document, with SpiffWorkflow's own task converter in place of the fast one."""
    config = dict(serializer._config)
    config[Task] = _StockTaskConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


STOCK = _stock_serializer()


def _process(name: str):
    forms = {path.name: json.loads(path.read_text()) for path in (ROOT / "forms").glob("*.json")}
    return compile_process({f"{name}.bpmn": (ROOT / "workflows" / f"{name}.bpmn").read_bytes()}, forms)


def _states(name: str, answers: list[dict]):
    """The engine's outcome after the start and after each answer to the first ready task."""
    engine = Engine()
    process = _process(name)
    outcome = engine.start(process, {"starter": "t1001", "starter_name": "张伟", "days": 5, "note": "x"})
    yield process, engine, outcome
    for answer in answers:
        if not outcome.ready:
            return
        outcome = engine.complete(process, outcome.state, outcome.ready[0].engine_task_id, answer)
        yield process, engine, outcome


FLOWS = {
    "leave_request": [{"reason": "病假", "days": 5}, {"approved": True, "comment": "同意"}, {"approved": True}],
    "seal_request": [{"purpose": "合同", "copies": 2}, {"approved": True}, {"approved": True}, {"done": True}],
}


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_fast_converter_writes_and_reads_what_spiffworkflow_does(name):
    for process, engine, outcome in _states(name, FLOWS[name]):
        stored = json.loads(json.dumps(outcome.state))  # as the database gives it back
        workflow = engine.load(process, stored)
        fast = serializer.dump(workflow)
        assert fast == outcome.state  # a load and a dump change nothing
        stock = STOCK.registry.convert(workflow)
        stock["format"] = serializer.FORMAT
        assert json.dumps(fast, sort_keys=True) == json.dumps(stock, sort_keys=True)
        # Reading: the stock converter and the fast one rebuild the same tasks from the same document.
        via_stock = STOCK.registry.restore(serializer._ordered(stored), spec=process.spec,
                                           subprocess_specs=process.subprocess_specs)
        via_fast = engine.load(process, stored)
        assert sorted(via_fast.tasks) == sorted(via_stock.tasks)
        for task_id, task in via_fast.tasks.items():
            other = via_stock.tasks[task_id]
            assert (task.state, task.task_spec.name, task._parent, task._children, task.data, task.internal_data,
                    task.triggered, task.last_state_change) == \
                   (other.state, other.task_spec.name, other._parent, other._children, other.data,
                    other.internal_data, other.triggered, other.last_state_change)


def test_deleted_and_changed_data_round_trip():
    """A later step that changes and removes data keys: the delta records both, and a restore rebuilds them."""
    engine = Engine()
    steps = ["a", "s", "b"]
    process = compile_process({"d.bpmn": diagrams.process(
        '<bpmn:startEvent id="start"/><bpmn:userTask id="a" name="A"/>'
        '<bpmn:scriptTask id="s" name="S"><bpmn:script>del temp\ncount = count + 1</bpmn:script></bpmn:scriptTask>'
        '<bpmn:userTask id="b" name="B"/><bpmn:endEvent id="end"/>'
        + "".join(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{source}" targetRef="{target}"/>'
                  for i, (source, target) in enumerate(zip(["start", *steps], [*steps, "end"], strict=True))),
        pid="d")}, {})
    outcome = engine.start(process, {"count": 1})
    outcome = engine.complete(process, outcome.state, outcome.ready[0].engine_task_id, {"temp": "x", "keep": [1, 2]})
    assert outcome.ready and outcome.ready[0].data["count"] == 2 and "temp" not in outcome.ready[0].data
    stored = json.loads(json.dumps(outcome.state))
    deltas = [t["delta"] for t in stored["tasks"].values() if t.get("delta")]
    assert any("temp" in d["deletions"] for d in deltas) and any(d["updates"].get("count") == 2 for d in deltas)
    workflow = engine.load(process, stored)
    ready = [t for t in workflow.tasks.values() if t.task_spec.name == "b"][0]
    assert ready.data == {"count": 2, "keep": [1, 2]}
    assert serializer.dump(workflow) == outcome.state


def test_task_ids_parsed_once_are_the_uuids_uuid_would_give():
    """The restore's id memo builds canonical ids without UUID()'s parsing, and any other spelling with it:
    either way the same value, hash and text as UUID(text); the text memo gives back exactly the text read."""
    from uuid import UUID, uuid4

    memo = serializer._Uuids()
    canonical = str(uuid4())
    others = ["{" + str(uuid4()) + "}", str(uuid4()).upper(), str(uuid4()).replace("-", "")]
    for text in [canonical, *others]:
        parsed, expected = memo[text], UUID(text)
        assert parsed == expected and hash(parsed) == hash(expected) and str(parsed) == str(expected)
        assert memo[text] is parsed  # parsed once
    assert memo.texts[id(memo[canonical])] == canonical
    assert all(id(memo[text]) not in memo.texts for text in others)  # written as str() writes them
    with pytest.raises(ValueError):
        memo["not-a-uuid"]


def test_a_restored_workflow_writes_new_tasks_ids_too():
    """Ids read with the state come from the text memo; tasks the engine adds after the restore have none
    there and are written from their UUID: the document names every task by its own id."""
    engine = Engine()
    process = _process("leave_request")
    outcome = engine.start(process, {"starter": "t1001", "starter_name": "张伟", "days": 5, "note": "x"})
    outcome = engine.complete(process, json.loads(json.dumps(outcome.state)), outcome.ready[0].engine_task_id,
                              {"reason": "病假", "days": 5})
    for key, task in outcome.state["tasks"].items():
        assert task["id"] == key
        for child in task["children"]:
            assert outcome.state["tasks"][child]["parent"] == key
