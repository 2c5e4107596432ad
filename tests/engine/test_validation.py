"""Deploy-time validation over the API: every refusal is a 422 naming the file, the element and the reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import bpmn_sequence
from tests.engine.diagrams import (
    condition_process,
    deploy,
    problems,
    process,
    refused_for,
    script_process,
    service_process,
)

SEQ = ('<bpmn:startEvent id="start"/><bpmn:userTask id="a" name="A"/><bpmn:endEvent id="end"/>'
       '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="a"/>'
       '<bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="end"/>')


def test_not_executable_is_refused(admin):
    """A process with isExecutable="false" is a picture, not a flow: refused naming the process."""
    response = deploy(admin, {"pic.bpmn": process(SEQ, pid="pic", executable=False)})
    refused_for(response, "pic.bpmn", "pic", "not executable")


def test_missing_start_event_is_refused(admin):
    """A process without a start event is refused naming the process."""
    body = ('<bpmn:userTask id="a" name="A"/><bpmn:endEvent id="end"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="end"/>')
    refused_for(deploy(admin, {"nostart.bpmn": process(body, pid="nostart")}), "nostart.bpmn", "nostart",
                "no start event")


def test_gateway_flow_without_condition_or_default_is_refused(admin):
    """An exclusive gateway's outgoing flow with no condition and no default is refused naming the flow."""
    body = ('<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="gw"/>'
            '<bpmn:userTask id="a" name="A"/><bpmn:userTask id="b" name="B"/><bpmn:endEvent id="end"/>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>'
            '<bpmn:sequenceFlow id="fa" sourceRef="gw" targetRef="a">'
            '<bpmn:conditionExpression>x == 1</bpmn:conditionExpression></bpmn:sequenceFlow>'
            '<bpmn:sequenceFlow id="fb" sourceRef="gw" targetRef="b"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="end"/>'
            '<bpmn:sequenceFlow id="f3" sourceRef="b" targetRef="end"/>')
    refused_for(deploy(admin, {"gw.bpmn": process(body, pid="gwp")}), "gw.bpmn", "fb", "no condition and no default")


def test_unresolved_call_activity_is_refused(admin):
    """A call activity naming a process that was not uploaded is refused naming the call activity."""
    body = ('<bpmn:startEvent id="start"/><bpmn:callActivity id="call1" calledElement="elsewhere"/>'
            '<bpmn:endEvent id="end"/><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call1"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="call1" targetRef="end"/>')
    refused_for(deploy(admin, {"call.bpmn": process(body, pid="caller")}), "call.bpmn", "call1",
                "unresolved call activity")


def test_cycle_without_gateway_is_refused(admin):
    """Task A → task B → task A with no gateway is refused naming a task of the cycle."""
    body = ('<bpmn:startEvent id="start"/><bpmn:userTask id="a" name="A"/><bpmn:userTask id="b" name="B"/>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="a"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="b"/>'
            '<bpmn:sequenceFlow id="f3" sourceRef="b" targetRef="a"/>')
    found = problems(deploy(admin, {"cycle.bpmn": process(body, pid="cyc")}))
    assert any(p["file"] == "cycle.bpmn" and p["element"] in ("a", "b") and "cycle with no gateway" in p["reason"]
               for p in found), found


def test_link_events_are_refused(admin):
    """Link events (ignored by the engine) are refused naming the event."""
    body = ('<bpmn:startEvent id="start"/>'
            '<bpmn:intermediateThrowEvent id="throw1"><bpmn:linkEventDefinition id="ld1" name="L"/>'
            '</bpmn:intermediateThrowEvent>'
            '<bpmn:intermediateCatchEvent id="catch1"><bpmn:linkEventDefinition id="ld2" name="L"/>'
            '</bpmn:intermediateCatchEvent><bpmn:endEvent id="end"/>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="throw1"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="catch1" targetRef="end"/>')
    response = deploy(admin, {"link.bpmn": process(body, pid="linked")})
    refused_for(response, "link.bpmn", "throw1", "link events")
    refused_for(response, "link.bpmn", "catch1", "link events")


def test_complex_gateway_is_refused(admin):
    """A complex gateway is refused naming the gateway."""
    body = ('<bpmn:startEvent id="start"/><bpmn:complexGateway id="cx"/><bpmn:endEvent id="end"/>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="cx"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="cx" targetRef="end"/>')
    refused_for(deploy(admin, {"cx.bpmn": process(body, pid="cxp")}), "cx.bpmn", "cx", "complex gateway")


def test_compensation_is_refused(admin):
    """A compensation boundary event and its compensation handler are refused, each by id."""
    body = ('<bpmn:startEvent id="start"/><bpmn:userTask id="a" name="A"/><bpmn:endEvent id="end"/>'
            '<bpmn:boundaryEvent id="comp1" attachedToRef="a"><bpmn:compensateEventDefinition id="cd1"/>'
            '</bpmn:boundaryEvent><bpmn:userTask id="undo" name="撤回" isForCompensation="true"/>'
            '<bpmn:association id="as1" sourceRef="comp1" targetRef="undo"/>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="a"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="end"/>')
    response = deploy(admin, {"comp.bpmn": process(body, pid="compp")})
    refused_for(response, "comp.bpmn", "comp1", "compensation")
    refused_for(response, "comp.bpmn", "undo", "compensation")


def test_ad_hoc_subprocess_is_refused(admin):
    """An ad hoc subprocess is refused naming it."""
    body = ('<bpmn:startEvent id="start"/><bpmn:adHocSubProcess id="adhoc"><bpmn:userTask id="x" name="X"/>'
            '</bpmn:adHocSubProcess><bpmn:endEvent id="end"/>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="adhoc"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="adhoc" targetRef="end"/>')
    refused_for(deploy(admin, {"adhoc.bpmn": process(body, pid="adhocp")}), "adhoc.bpmn", "adhoc",
                "ad hoc subprocess")


def test_service_task_without_operator_is_refused(admin):
    """A service task that names no operator is refused naming the task."""
    refused_for(deploy(admin, {"svc.bpmn": service_process(None)}), "svc.bpmn", "svc1", "no operator")


def test_service_task_with_unknown_operator_is_refused(admin):
    """A service task naming an operator the hall does not provide is refused naming the task and operator."""
    response = deploy(admin, {"svc.bpmn": service_process("erp.delete_everything")})
    refused_for(response, "svc.bpmn", "svc1", "erp.delete_everything")


def test_missing_form_file_is_refused(admin):
    """A user task referencing a form file that was not uploaded is refused naming the task and the form."""
    props = ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property '
             'name="formJsonSchemaFilename" value="missing-schema.json"/></spiffworkflow:properties>'
             '</bpmn:extensionElements>')
    content = bpmn_sequence("formless", 1, extra_props=props)
    refused_for(deploy(admin, {"formless.bpmn": content}), "formless.bpmn", "t1", "missing-schema.json")


def test_form_that_is_not_json_schema_is_refused_saying_where(admin):
    """A form whose schema breaks the meta-schema is refused naming the file, the place in it and why, in Chinese."""
    props = ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property '
             'name="formJsonSchemaFilename" value="odd.json"/></spiffworkflow:properties></bpmn:extensionElements>')
    form = b'{"type": "object", "properties": {"n": {"type": "nonsense"}}}'
    response = deploy(admin, {"odd.bpmn": bpmn_sequence("odd", 1, extra_props=props)}, {"odd.json": form})
    refused_for(response, "odd.json", "", 'properties/n/type 处的 "nonsense"：type 只能是 string、')


def test_form_file_that_is_not_json_is_refused_saying_where(admin):
    """A form file that is not JSON is refused with the line, the column and the reason."""
    response = deploy(admin, {"odd.bpmn": bpmn_sequence("odd", 1)}, {"odd.json": b'{\n  "type" "object"}'})
    refused_for(response, "odd.json", "", "第 2 行第 10 列：缺少冒号")


def test_forbidden_script_construct_is_refused(admin):
    """A script calling __import__ is refused at deploy naming the script task."""
    response = deploy(admin, {"imp.bpmn": script_process("os = __import__('os')")})
    refused_for(response, "imp.bpmn", "script1", "__import__")


def test_condition_syntax_error_is_refused(admin):
    """A condition that is not valid Python is refused at deploy naming the gateway."""
    response = deploy(admin, {"syn.bpmn": condition_process("x ==== 1")})
    found = problems(response)
    assert any(p["file"] == "syn.bpmn" and p["element"] in ("gw", "fyes") and "SyntaxError" in p["reason"]
               for p in found), found


def test_entity_expansion_bomb_is_refused_fast(admin):
    """A billion-laughs document is refused at once, without expanding its entities."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    bomb = (f'<?xml version="1.0"?><!DOCTYPE bpmn:definitions [{entities}]>'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
            '<bpmn:process id="bomb" isExecutable="true"><bpmn:documentation>&lol9;</bpmn:documentation>'
            '</bpmn:process></bpmn:definitions>').encode()
    started = time.monotonic()
    response = deploy(admin, {"bomb.bpmn": bomb})
    assert time.monotonic() - started < 2
    assert any(p["file"] == "bomb.bpmn" and "DTD" in p["reason"] for p in problems(response))


def test_external_entity_is_refused_and_never_read(admin, tmp_path):
    """An external entity pointing at a local file is refused and the file's content never appears."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
           '<bpmn:process id="xxe" name="&xxe;" isExecutable="true"><bpmn:startEvent id="s"/></bpmn:process>'
           '</bpmn:definitions>').encode()
    response = deploy(admin, {"xxe.bpmn": xxe})
    assert any(p["file"] == "xxe.bpmn" and "DTD" in p["reason"] for p in problems(response))
    assert b"TOP-SECRET-MARKER" not in response.data


def test_passwd_external_entity_is_refused(admin):
    """The classic file:///etc/passwd external entity is refused; nothing of the file comes back."""
    xxe = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
           b'<bpmn:process id="xxe" isExecutable="true"><bpmn:documentation>&xxe;</bpmn:documentation>'
           b'</bpmn:process></bpmn:definitions>')
    response = deploy(admin, {"passwd.bpmn": xxe})
    problems(response)
    assert b"root:" not in response.data


def test_malformed_xml_is_refused(admin):
    """XML that does not parse is a 422 naming the file and the parse error."""
    response = deploy(admin, {"broken.bpmn": b"<bpmn:definitions><unclosed>"})
    assert any(p["file"] == "broken.bpmn" and "XML" in p["reason"] for p in problems(response))


def test_non_bpmn_root_is_refused(admin):
    """Well-formed XML that is not bpmn:definitions is refused naming the file."""
    response = deploy(admin, {"svg.bpmn": b'<svg xmlns="http://www.w3.org/2000/svg"/>'})
    assert any(p["file"] == "svg.bpmn" and "BPMN" in p["reason"] for p in problems(response))


def test_oversized_file_is_refused(admin, app, monkeypatch):
    """A diagram over MAX_BPMN_BYTES is refused with a 4xx naming the file and the limit."""
    monkeypatch.setitem(app.config, "MAX_BPMN_BYTES", 2000)
    content = bpmn_sequence("big", 30)
    assert len(content) > 2000
    response = deploy(admin, {"big.bpmn": content})
    assert 400 <= response.status_code < 500
    found = response.get_json()["errors"]
    assert any(p["file"] == "big.bpmn" and "2000" in p["reason"] for p in found), found


def _timer_process(pid: str, definition: str) -> bytes:
    """start → user task `t1` with a non-interrupting boundary timer `tm` (*definition*) → end."""
    return process(
        '<bpmn:startEvent id="start"/><bpmn:userTask id="t1" name="审核"/><bpmn:endEvent id="end"/>'
        '<bpmn:boundaryEvent id="tm" attachedToRef="t1" cancelActivity="false">'
        f'<bpmn:timerEventDefinition id="td">{definition}</bpmn:timerEventDefinition></bpmn:boundaryEvent>'
        '<bpmn:userTask id="remind" name="提醒"/><bpmn:endEvent id="end2"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="end"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="tm" targetRef="remind"/>'
        '<bpmn:sequenceFlow id="f4" sourceRef="remind" targetRef="end2"/>',
        pid,
    )


def _timer_due(app, instance_id: int) -> datetime:
    from hall.extensions import db
    from hall.processes.models import Timer

    rows = db.session.query(Timer).filter_by(instance_id=instance_id, element_id="tm").all()
    assert len(rows) == 1, rows
    due = rows[0].due_at
    return due if due.tzinfo else due.replace(tzinfo=UTC)


@pytest.mark.parametrize(("definition", "offset"), [
    ("<bpmn:timeDuration>PT1H</bpmn:timeDuration>", timedelta(hours=1)),
    ("<bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>", timedelta(hours=1)),
], ids=["duration", "cycle"])
def test_unquoted_iso_duration_timer_is_accepted(admin, app, definition, offset):
    """An unquoted ISO duration or cycle deploys and the timer row is due one period after the start."""
    response = deploy(admin, {"timer.bpmn": _timer_process("timed", definition)})
    assert response.status_code == 201, response.get_json()
    before = datetime.now(UTC)
    started = admin.post("process-instances", {"definition": "timed", "data": {}})
    assert started.status_code == 201, started.get_json()
    after = datetime.now(UTC)
    due = _timer_due(app, started.get_json()["id"])
    assert before + offset - timedelta(seconds=2) <= due <= after + offset + timedelta(seconds=2)


def test_unquoted_iso_date_timer_is_accepted(admin, app):
    """An unquoted ISO date-time timer deploys and the timer row is due at that instant."""
    definition = "<bpmn:timeDate>2026-12-01T09:00:00Z</bpmn:timeDate>"
    response = deploy(admin, {"timer.bpmn": _timer_process("dated", definition)})
    assert response.status_code == 201, response.get_json()
    started = admin.post("process-instances", {"definition": "dated", "data": {}})
    assert started.status_code == 201, started.get_json()
    assert _timer_due(app, started.get_json()["id"]) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_identical_content_deploys_to_the_same_version(admin):
    """Deploying the same content twice answers 200 with created false and the same version."""
    first = deploy(admin, {"same.bpmn": bpmn_sequence("same", 2)})
    second = deploy(admin, {"same.bpmn": bpmn_sequence("same", 2)})
    assert first.status_code == 201 and first.get_json()["created"] is True
    assert second.status_code == 200 and second.get_json()["created"] is False
    assert second.get_json()["number"] == first.get_json()["number"] == 1


def test_changed_content_makes_a_new_version_and_old_instances_stay(admin):
    """Changed content becomes version 2; an instance started on version 1 keeps running version 1."""
    assert deploy(admin, {"evolve.bpmn": bpmn_sequence("evolve", 1)}).status_code == 201
    old = admin.post("process-instances", {"definition": "evolve", "data": {}}).get_json()
    second = deploy(admin, {"evolve.bpmn": bpmn_sequence("evolve", 3)})
    assert second.status_code == 201 and second.get_json()["number"] == 2
    new = admin.post("process-instances", {"definition": "evolve", "data": {}}).get_json()
    assert (old["version"], new["version"]) == (1, 2)
    task_id = next(t["id"] for t in admin.get(f"process-instances/{old['id']}").get_json()["tasks"]
                   if t["state"] == "ready")
    task = admin.get(f"tasks/{task_id}").get_json()
    done = admin.post(f"tasks/{task_id}/complete", {"data": {}, "version": task["version"]})
    assert done.status_code == 200, done.get_json()
    finished = admin.get(f"process-instances/{old['id']}").get_json()
    assert finished["state"] == "completed" and finished["version"] == 1


def test_call_activity_resolved_by_a_second_file_deploys_and_runs(admin):
    """A call activity whose process comes in a second uploaded file deploys and runs into the callee."""
    caller = process('<bpmn:startEvent id="start"/><bpmn:callActivity id="call1" calledElement="callee"/>'
                     '<bpmn:endEvent id="end"/><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call1"/>'
                     '<bpmn:sequenceFlow id="f2" sourceRef="call1" targetRef="end"/>', pid="caller")
    callee = process(SEQ, pid="callee")
    response = deploy(admin, {"caller.bpmn": caller, "callee.bpmn": callee})
    assert response.status_code == 201, response.get_json()
    started = admin.post("process-instances", {"definition": "caller", "data": {}})
    assert started.status_code == 201, started.get_json()
    assert started.get_json()["current_elements"][-1] == "a"


def test_every_problem_of_a_diagram_is_reported_at_once(admin):
    """A diagram with several faults gets all of them in one refusal, each with its element."""
    body = ('<bpmn:startEvent id="start"/><bpmn:complexGateway id="cx"/><bpmn:serviceTask id="svc"/>'
            '<bpmn:endEvent id="end"/><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="cx"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="cx" targetRef="svc"/>'
            '<bpmn:sequenceFlow id="f3" sourceRef="svc" targetRef="end"/>')
    found = problems(deploy(admin, {"many.bpmn": process(body, pid="many")}))
    assert {p["element"] for p in found} >= {"cx", "svc"}, found


def test_deploy_by_non_admin_is_forbidden(admin, make_api):
    """Only an administrator may deploy: a teacher gets 403."""
    teacher = make_api().login("t1001")
    assert deploy(teacher, {"seq.bpmn": bpmn_sequence("seq", 1)}).status_code == 403
