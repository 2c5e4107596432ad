"""The script sandbox: classic escapes in scripts and conditions never run; they end as a deploy refusal
or as an instance error naming the element. Service operators report their real errors."""

from __future__ import annotations

import time

import pytest

from hall.engine.services import OPERATORS
from tests.engine.diagrams import condition_process, deploy, prepost_process, problems, script_process, service_process

ESCAPES = {
    "subclasses": "x = ().__class__.__bases__[0].__subclasses__()",
    "dunder_import": "os = __import__('os')",
    "import": "import os",
    "open": "data = open('/etc/passwd').read()",
    "getattr": "c = getattr(1, '__class__')",
    "format_string": "s = '{0.__class__}'.format(1)",
    "str_format": "s = str.format('{0.__class__}', 1)",
    "infinite_loop": "while True: pass",
    "huge_string": "s = 'x' * 10**10",
    "huge_list": "l = [0] * 10**9",
    "huge_power": "n = 10 ** 10 ** 10",
    "type": "t = type(1)",
    "lambda_code": "c = (lambda: 1).__code__",
    "generator_frame": "g = (i for i in [1]).gi_frame",
    "mro": "m = str.mro()",
    "eval": "r = eval('1')",
}


def _start(api, definition: str, data: dict | None = None) -> dict:
    response = api.post("process-instances", {"definition": definition, "data": data or {}})
    assert response.status_code == 201, (response.status_code, response.get_json())
    return response.get_json()


@pytest.mark.parametrize("script", ESCAPES.values(), ids=ESCAPES.keys())
def test_script_escape_never_runs(admin, script):
    """An escape in a script task is refused at deploy or puts the instance in error at the script task."""
    started_at = time.monotonic()
    response = deploy(admin, {"escape.bpmn": script_process(script)})
    if response.status_code == 422:
        assert any(p["element"] == "script1" for p in problems(response)), response.get_json()
        return
    assert response.status_code == 201, response.get_json()
    instance = _start(admin, "scripted")
    assert time.monotonic() - started_at < 5
    assert instance["state"] == "error", instance
    assert instance["error_element"] == "script1"
    assert "sandbox" in instance["error_message"] or "不允许" in instance["error_message"], instance
    assert instance["current_elements"] == ["script1"]


def test_escape_in_condition_is_refused_at_deploy(admin):
    """A dunder escape inside a gateway condition is refused at deploy, naming the gateway."""
    response = deploy(admin, {"cond.bpmn": condition_process("().__class__.__bases__[0].__subclasses__()")})
    assert any(p["element"] in ("gw", "fyes") for p in problems(response)), response.get_json()


def test_escape_in_condition_fails_at_run_time(admin):
    """A condition calling open() compiles but fails in the sandbox: instance error at the gateway."""
    assert deploy(admin, {"cond.bpmn": condition_process("open('/etc/passwd').read() != ''")}).status_code == 201
    instance = _start(admin, "cond")
    assert instance["state"] == "error", instance
    assert instance["error_element"] == "gw"
    assert "open" in instance["error_message"]


def test_safe_condition_runs(admin):
    """A plain condition is evaluated: true goes to the `yes` task."""
    assert deploy(admin, {"cond.bpmn": condition_process("amount * 2 > 10")}).status_code == 201
    instance = _start(admin, "cond", {"amount": 6})
    assert instance["state"] == "running" and instance["current_elements"] == ["yes"], instance


def test_plain_script_runs_and_sets_data(admin):
    """A harmless script runs and what it assigns becomes task data."""
    assert deploy(admin, {"ok.bpmn": script_process("total = price * count")}).status_code == 201
    instance = _start(admin, "scripted", {"price": 3, "count": 4})
    assert instance["state"] == "running", instance
    task_id = next(t["id"] for t in instance["tasks"] if t["state"] == "ready")
    assert admin.get(f"tasks/{task_id}").get_json()["data"]["total"] == 12


def test_echo_operator_runs(admin):
    """A service task with hall.echo runs and stores its result in the task data."""
    params = '<spiffworkflow:parameter id="greeting" type="str" value="\'你好\'"/>'
    assert deploy(admin, {"svc.bpmn": service_process("hall.echo", params)}).status_code == 201
    instance = _start(admin, "svc")
    assert instance["state"] == "running" and instance["current_elements"] == ["t1"], instance
    task_id = next(t["id"] for t in instance["tasks"] if t["state"] == "ready")
    assert admin.get(f"tasks/{task_id}").get_json()["data"]["result"] == {"greeting": "你好"}


def test_failing_operator_shows_the_real_error(admin, monkeypatch):
    """An operator that raises puts the instance in error with its own message, not Spiff's NameError."""
    def fail(params, data):
        raise RuntimeError("教务系统暂时不可用")

    monkeypatch.setitem(OPERATORS, "test.fail", fail)
    assert deploy(admin, {"svc.bpmn": service_process("test.fail")}).status_code == 201
    instance = _start(admin, "svc")
    assert instance["state"] == "error", instance
    assert instance["error_element"] == "svc1"
    assert "教务系统暂时不可用" in instance["error_message"]
    assert "name 'script' is not defined" not in instance["error_message"]


UNSTORABLE = {
    "nan": ("x = float('nan')", "NaN"),
    "infinity": ("x = 1e308 * 10", "NaN"),
    "nested_nan": ("x = {'a': [1, float('inf')]}", "NaN"),
    "set": ("x = {1, 2}", "set"),
    "int_key": ("x = {1: 'a'}", "键"),
    "self_reference": ("x = []\nx.append(x)", "引用"),
}


@pytest.mark.parametrize(("script", "named"), UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_a_value_that_cannot_be_stored_is_an_instance_error(admin, script, named):
    """What a script assigns becomes task data, stored as JSON. A value with no exact JSON form (NaN and
    infinity would become null; a set would fail the write with a 500) ends as an instance error at the
    script task, naming the variable; nothing is stored in its place."""
    assert deploy(admin, {"store.bpmn": script_process(script)}).status_code == 201
    instance = _start(admin, "scripted")
    assert instance["state"] == "error", instance
    assert instance["error_element"] == "script1"
    assert "x" in instance["error_message"] and named in instance["error_message"], instance["error_message"]


def test_json_values_from_a_script_are_kept(admin):
    """Text, numbers, booleans, null, lists, tuples and text-keyed dictionaries are kept as they are; the
    same list held twice is no cycle and is kept in both places."""
    script = "s = [1]\nx = {'名': '张伟', 'n': [1, 2.5, True, None], 't': (1, 2), 'big': 2 ** 70, 'twice': [s, s]}"
    assert deploy(admin, {"kept.bpmn": script_process(script)}).status_code == 201
    instance = _start(admin, "scripted")
    assert instance["state"] == "running", instance
    task_id = next(t["id"] for t in instance["tasks"] if t["state"] == "ready")
    assert admin.get(f"tasks/{task_id}").get_json()["data"]["x"] == {
        "名": "张伟", "n": [1, 2.5, True, None], "t": [1, 2], "big": 2 ** 70, "twice": [[1], [1]]}


def _ready_task(api, instance: dict) -> dict:
    task_id = next(t["id"] for t in instance["tasks"] if t["state"] == "ready")
    return api.get(f"tasks/{task_id}").get_json()


def test_pre_and_post_scripts_run_and_set_data(admin):
    """A user task's preScript runs before the task is offered (its data shows in the form) and its
    postScript after the submit, over the submitted data; what they assign travels on."""
    diagram = prepost_process(pre="greeting = '请审核' + str(amount)", post="doubled = amount * 2")
    assert deploy(admin, {"prepost.bpmn": diagram}).status_code == 201
    instance = _start(admin, "prepost", {"amount": 21})
    assert instance["state"] == "running" and instance["current_elements"] == ["t1"], instance
    task = _ready_task(admin, instance)
    assert task["data"]["greeting"] == "请审核21"
    response = admin.post(f"tasks/{task['id']}/complete", {"data": {"amount": 5}, "version": task["version"]})
    assert response.status_code == 200, response.get_json()
    detail = admin.get(f"process-instances/{instance['id']}").get_json()
    assert detail["current_elements"] == ["t2"], detail
    assert _ready_task(admin, detail)["data"]["doubled"] == 10


@pytest.mark.parametrize("script", ESCAPES.values(), ids=ESCAPES.keys())
def test_pre_script_escape_never_runs(admin, script):
    """An escape in a preScript is refused at deploy naming the task, or ends as an instance error at the
    task before anyone is offered it."""
    started_at = time.monotonic()
    response = deploy(admin, {"pre.bpmn": prepost_process(pre=script)})
    if response.status_code == 422:
        assert any(p["element"] == "t1" for p in problems(response)), response.get_json()
        return
    assert response.status_code == 201, response.get_json()
    instance = _start(admin, "prepost")
    assert time.monotonic() - started_at < 5
    assert instance["state"] == "error", instance
    assert instance["error_element"] == "t1"
    assert "sandbox" in instance["error_message"] or "不允许" in instance["error_message"], instance
    assert not [t for t in instance["tasks"] if t["state"] == "ready"], instance


@pytest.mark.parametrize("script", ESCAPES.values(), ids=ESCAPES.keys())
def test_post_script_escape_never_runs(admin, script):
    """An escape in a postScript is refused at deploy, or the submit that runs it ends as an instance error
    at the task; the flow does not move on to the next step."""
    response = deploy(admin, {"post.bpmn": prepost_process(post=script)})
    if response.status_code == 422:
        assert any(p["element"] == "t1" for p in problems(response)), response.get_json()
        return
    assert response.status_code == 201, response.get_json()
    instance = _start(admin, "prepost")
    task = _ready_task(admin, instance)
    started_at = time.monotonic()
    admin.post(f"tasks/{task['id']}/complete", {"data": {}, "version": task["version"]})
    assert time.monotonic() - started_at < 5
    detail = admin.get(f"process-instances/{instance['id']}").get_json()
    assert detail["state"] == "error", detail
    assert detail["error_element"] == "t1"
    assert "sandbox" in detail["error_message"] or "不允许" in detail["error_message"], detail
    assert "t2" not in detail["current_elements"], detail


def test_a_pre_script_where_it_would_never_run_is_refused(admin):
    """SpiffWorkflow runs pre/post scripts on tasks only: a preScript on an end event would be silently
    ignored, so the deploy is refused naming the event."""
    diagram = (b'<?xml version="1.0" encoding="UTF-8"?>'
               b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
               b'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">'
               b'<bpmn:process id="ignored" isExecutable="true"><bpmn:startEvent id="start"/>'
               b'<bpmn:userTask id="t1"/><bpmn:endEvent id="end"><bpmn:extensionElements>'
               b'<spiffworkflow:preScript>result = "done"</spiffworkflow:preScript></bpmn:extensionElements>'
               b'</bpmn:endEvent><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t1"/>'
               b'<bpmn:sequenceFlow id="f2" sourceRef="t1" targetRef="end"/></bpmn:process></bpmn:definitions>')
    found = problems(deploy(admin, {"ignored.bpmn": diagram}))
    assert [p["element"] for p in found] == ["end"], found
    assert "preScript" in found[0]["reason"] and "任务" in found[0]["reason"]
