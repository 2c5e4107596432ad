"""Loop guard and instance errors: a runaway loop ends in error, never "completed"; an administrator can
fix data and retry, suspend, resume or terminate, and nobody else can."""

from __future__ import annotations

from hall.engine import Engine, compile_process, runtime
from tests.conftest import bpmn_sequence
from tests.engine.diagrams import deploy, process

LOOP_GUARD = "loop guard"


def _start(api, definition: str, data: dict | None = None) -> dict:
    response = api.post("process-instances", {"definition": definition, "data": data or {}})
    assert response.status_code == 201, (response.status_code, response.get_json())
    return response.get_json()


def _script_only(script: str, pid: str = "calc") -> bytes:
    """start → script task `script1` → end: no user task."""
    from xml.sax.saxutils import escape

    return process(
        f'<bpmn:startEvent id="start"/><bpmn:scriptTask id="script1" name="计算"><bpmn:script>{escape(script)}'
        '</bpmn:script></bpmn:scriptTask><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="script1"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="script1" targetRef="end"/>',
        pid,
    )


def test_user_task_loop_ends_in_error_not_completed(admin, monkeypatch):
    """Completing a looping user task again and again over the API ends in error with the loop-guard message."""
    # A lower limit keeps the test short; the real limit is pinned against the engine alone below.
    monkeypatch.setattr(runtime, "MAX_TREE_DEPTH", 120)
    assert deploy(admin, {"loop.bpmn": bpmn_sequence("looping", 1, loop=True)}).status_code == 201
    instance = _start(admin, "looping")
    for _round in range(2000):
        if instance["state"] != "running":
            break
        task_id = next(t["id"] for t in instance["tasks"] if t["state"] == "ready")
        version = admin.get(f"tasks/{task_id}").get_json()["version"]
        done = admin.post(f"tasks/{task_id}/complete", {"data": {"again": True}, "version": version})
        assert done.status_code == 200, done.get_json()
        instance = admin.get(f"process-instances/{instance['id']}").get_json()
    assert instance["state"] == "error", instance["state"]
    assert LOOP_GUARD in instance["error_message"]
    assert instance["error_element"]


def test_loop_guard_fires_before_the_engine_silently_completes():
    """At the real limit the guard stops a user-task loop in error; the engine never reports it completed."""
    process_ = compile_process({"loop.bpmn": bpmn_sequence("looping", 1, loop=True)}, {})
    engine = Engine()
    outcome = engine.start(process_, {})
    for _round in range(1000):
        if outcome.status != "running":
            break
        outcome = engine.complete(process_, outcome.state, outcome.ready[0].engine_task_id, {"again": True})
    assert outcome.status == "error"
    assert LOOP_GUARD in outcome.error_message and outcome.error_element


def test_script_and_gateway_loop_ends_in_error(admin):
    """A loop of a script task and a gateway, with no user task, stops in error at start."""
    body = ('<bpmn:startEvent id="start"/><bpmn:scriptTask id="count" name="计数"><bpmn:script>n = n + 1'
            '</bpmn:script></bpmn:scriptTask><bpmn:exclusiveGateway id="gw" default="fend"/><bpmn:endEvent id="end"/>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="count"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="count" targetRef="gw"/>'
            '<bpmn:sequenceFlow id="fback" sourceRef="gw" targetRef="count">'
            '<bpmn:conditionExpression>n &gt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>'
            '<bpmn:sequenceFlow id="fend" sourceRef="gw" targetRef="end"/>')
    assert deploy(admin, {"spin.bpmn": process(body, pid="spin")}).status_code == 201
    instance = _start(admin, "spin", {"n": 0})
    assert instance["state"] == "error", instance
    assert LOOP_GUARD in instance["error_message"]
    assert instance["error_element"] in ("count", "gw")


def test_script_failing_on_missing_data_is_an_instance_error(admin):
    """`y = x + 1` without x puts the instance in error at the script task, naming x."""
    assert deploy(admin, {"calc.bpmn": _script_only("y = x + 1")}).status_code == 201
    instance = _start(admin, "calc")
    assert instance["state"] == "error"
    assert instance["error_element"] == "script1"
    assert "x" in instance["error_message"] and "NameError" in instance["error_message"]


def test_admin_retry_with_fixed_data_completes(admin):
    """An administrator's retry with the missing data runs the script again and the instance completes."""
    assert deploy(admin, {"calc.bpmn": _script_only("y = x + 1")}).status_code == 201
    instance = _start(admin, "calc")
    retried = admin.post(f"process-instances/{instance['id']}/retry", {"data": {"x": 1}})
    assert retried.status_code == 200, retried.get_json()
    body = retried.get_json()
    assert body["state"] == "completed" and body["error_message"] is None, body
    assert "script1" in body["completed_elements"]


def test_retry_by_non_admin_is_forbidden(admin, make_api):
    """Only an administrator may retry: a teacher gets 403 and the instance stays in error."""
    assert deploy(admin, {"calc.bpmn": _script_only("y = x + 1")}).status_code == 201
    instance = _start(admin, "calc")
    teacher = make_api().login("t1001")
    assert teacher.post(f"process-instances/{instance['id']}/retry", {"data": {"x": 1}}).status_code == 403
    assert admin.get(f"process-instances/{instance['id']}").get_json()["state"] == "error"


def test_admin_suspends_resumes_and_terminates(admin):
    """Suspend, resume and terminate by an administrator move the instance through those states."""
    assert deploy(admin, {"seq.bpmn": bpmn_sequence("seq", 2)}).status_code == 201
    instance = _start(admin, "seq")
    path = f"process-instances/{instance['id']}"
    assert admin.post(f"{path}/suspend").get_json()["state"] == "suspended"
    assert admin.post(f"{path}/resume").get_json()["state"] == "running"
    terminated = admin.post(f"{path}/terminate", {"reason": "测试"})
    assert terminated.status_code == 200 and terminated.get_json()["state"] == "terminated"


def test_others_cannot_suspend_resume_or_terminate(admin, make_api):
    """The starter and other people get 403 for suspend, resume and terminate; the state does not move."""
    assert deploy(admin, {"seq.bpmn": bpmn_sequence("seq", 2)}).status_code == 201
    teacher = make_api().login("t1001")
    instance = _start(teacher, "seq")
    path = f"process-instances/{instance['id']}"
    for action in ("suspend", "terminate"):
        assert teacher.post(f"{path}/{action}", {}).status_code == 403
    assert admin.post(f"{path}/suspend").status_code == 200
    head = make_api().login("h2001")
    for who in (teacher, head):
        assert who.post(f"{path}/resume").status_code == 403
    assert admin.get(path).get_json()["state"] == "suspended"
