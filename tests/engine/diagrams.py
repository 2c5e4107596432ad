"""Small diagram builders and an API deploy helper shared by the engine tests."""

from __future__ import annotations

from io import BytesIO
from xml.sax.saxutils import escape

HEADER = '''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://hall.test">'''


def process(body: str, pid: str = "p", executable: bool = True, extra: str = "") -> bytes:
    """One process holding *body* (elements and flows), wrapped in bpmn:definitions."""
    flag = "true" if executable else "false"
    return (f'{HEADER}<bpmn:process id="{pid}" name="测试" isExecutable="{flag}">{body}</bpmn:process>{extra}'
            "</bpmn:definitions>").encode()


def script_process(script: str, pid: str = "scripted") -> bytes:
    """start → script task `script1` running *script* → user task `t1` → end."""
    return process(
        '<bpmn:startEvent id="start"/>'
        f'<bpmn:scriptTask id="script1" name="脚本"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>'
        '<bpmn:userTask id="t1" name="审核"/><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="script1"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="script1" targetRef="t1"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="t1" targetRef="end"/>',
        pid,
    )


def prepost_process(pre: str | None = None, post: str | None = None, pid: str = "prepost") -> bytes:
    """start → user task `t1` carrying a preScript *pre* and a postScript *post* → user task `t2` → end."""
    scripts = "".join(f"<spiffworkflow:{tag}>{escape(text)}</spiffworkflow:{tag}>"
                      for tag, text in (("preScript", pre), ("postScript", post)) if text is not None)
    return process(
        '<bpmn:startEvent id="start"/>'
        f'<bpmn:userTask id="t1" name="填写"><bpmn:extensionElements>{scripts}</bpmn:extensionElements>'
        '</bpmn:userTask><bpmn:userTask id="t2" name="审核"/><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="t2"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="t2" targetRef="end"/>',
        pid,
    )


def condition_process(condition: str, pid: str = "cond") -> bytes:
    """start → exclusive gateway `gw` whose flow `fyes` carries *condition* (default `fno`) → end."""
    return process(
        '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="gw" default="fno"/>'
        '<bpmn:userTask id="yes" name="是"/><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>'
        f'<bpmn:sequenceFlow id="fyes" sourceRef="gw" targetRef="yes"><bpmn:conditionExpression>'
        f'{escape(condition)}</bpmn:conditionExpression></bpmn:sequenceFlow>'
        '<bpmn:sequenceFlow id="fno" sourceRef="gw" targetRef="end"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="yes" targetRef="end"/>',
        pid,
    )


def service_process(operator: str | None, params: str = "", pid: str = "svc") -> bytes:
    """start → service task `svc1` calling *operator* (None: no operator element) → user task `t1` → end."""
    op = ""
    if operator is not None:
        op = (f'<bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="result">'
              f'<spiffworkflow:parameters>{params}</spiffworkflow:parameters>'
              '</spiffworkflow:serviceTaskOperator></bpmn:extensionElements>')
    return process(
        f'<bpmn:startEvent id="start"/><bpmn:serviceTask id="svc1" name="服务">{op}</bpmn:serviceTask>'
        '<bpmn:userTask id="t1" name="审核"/><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="svc1"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="svc1" targetRef="t1"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="t1" targetRef="end"/>',
        pid,
    )


def deploy(api, files: dict[str, bytes], forms: dict[str, bytes] | None = None):
    """POST /process-definitions as multipart (field `file` for diagrams, `forms` for JSON forms)."""
    data = {
        "file": [(BytesIO(content), name) for name, content in files.items()],
        "forms": [(BytesIO(content), name) for name, content in (forms or {}).items()],
    }
    return api.post("process-definitions", data=data, content_type="multipart/form-data")


def problems(response) -> list[dict]:
    """The refusal's problems, after checking it is a 422 with the uniform error body."""
    assert response.status_code == 422, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["code"] == 422 and isinstance(body["errors"], list) and body["errors"], body
    return body["errors"]


def refused_for(response, filename: str, element: str, reason_part: str) -> None:
    """The refusal names *filename*, *element* and a reason containing *reason_part*."""
    found = problems(response)
    assert any(p["file"] == filename and p["element"] == element and reason_part in p["reason"] for p in found), found
