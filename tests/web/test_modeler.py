"""The BPMN modeler in a real browser: an administrator draws a two-step flow (palette, real mouse), names it
in the properties panel, validates it (a problem is shown on its element, then none), deploys it; a teacher
starts the new service from the catalogue on a phone, finishes both steps and sees every step marked done."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.test_admin import Shots
from tests.web.test_diagram import diagram_marks
from tests.web.test_pages import Visit, sign_in

# Connects what the palette made into start → first → second → end, through bpmn-js's own modeling API
# (drag-and-drop of connections is what is flaky in a headless browser, not what is under test here).
FINISH_FLOW = """([first]) => {
  const m = window.hallModeler;
  const registry = m.get('elementRegistry'), modeling = m.get('modeling'), replace = m.get('bpmnReplace');
  const root = m.get('canvas').getRootElement();
  const start = registry.filter(e => e.type === 'bpmn:StartEvent')[0];
  let task = registry.get(first);
  task = replace.replaceElement(task, {type: 'bpmn:UserTask'});
  const second = modeling.createShape({type: 'bpmn:UserTask'}, {x: task.x + 250, y: task.y + 40}, root);
  modeling.updateProperties(second, {name: '部门确认'});
  const end = modeling.createShape({type: 'bpmn:EndEvent'}, {x: second.x + 250, y: second.y + 40}, root);
  modeling.connect(start, task);
  modeling.connect(task, second);
  modeling.connect(second, end);
  return {first: task.id, second: second.id, start: start.id, end: end.id};
}"""


@pytest.fixture
def admin_hall(app, ctx):
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()


def _elements(page) -> list[str]:
    return page.evaluate("() => window.hallModeler.get('elementRegistry').getAll().map(e => e.id)")


def test_admin_draws_validates_deploys_and_teacher_finishes_it(admin_hall, live_server, desktop, phone,  # noqa: F811
                                                               screenshots, request):
    """The whole life of a drawn process: palette → properties → 校验 with a problem on its element →
    fixed → 部署 → the teacher starts it from the catalogue and finishes both steps; the diagram marks all."""
    shots = Shots(screenshots, request.node.name.removeprefix("test_"))
    admin = desktop()
    refused = []
    admin.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    sign_in(admin, live_server, "admin")
    admin.click("nav.tabs >> text=管理")
    expect(admin.locator("h1")).to_contain_text("流程管理")
    admin.click("a:has-text('新建流程')")
    modeler = admin.locator("#modeler")
    expect(modeler).to_have_attribute("data-ready", "true")
    shots.take(admin, "modeler-new")

    # A task from the palette, placed with the mouse.
    before = set(_elements(admin))
    admin.click(".djs-palette [data-action='create.task']")
    canvas = admin.locator("#canvas").bounding_box()
    start = admin.locator(".djs-element[data-element-id=StartEvent_1]").bounding_box()
    x, y = start["x"] + 200, start["y"] + start["height"] / 2  # to the right of the start event
    admin.mouse.move(x - 20, y)
    admin.mouse.move(x, y)
    admin.mouse.click(x, y)
    created = [e for e in _elements(admin) if e not in before and not e.endswith("_label")]
    assert len(created) == 1, created
    ids = admin.evaluate(FINISH_FLOW, [created[0]])

    # Name the process and the first step in the properties panel; point the step at a form that is missing.
    admin.click(f".djs-element[data-element-id='{ids['first']}']", position={"x": 50, "y": 60})
    expect(admin.locator("#props-kind")).to_have_text("用户任务")
    admin.fill("#prop-name", "填写申请")
    admin.locator("#prop-name").press("Tab")
    admin.fill("#prop-form", "no_such_form.json")
    admin.locator("#prop-form").press("Tab")
    # Empty canvas selects the process; measured again, as focusing the panel may have scrolled the page.
    canvas = admin.locator("#canvas").bounding_box()
    admin.mouse.click(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] - 30)
    expect(admin.locator("#props-kind")).to_have_text("流程")
    admin.fill("#prop-id", "drawn_request")
    admin.locator("#prop-id").press("Tab")
    admin.fill("#prop-name", "画出来的申请")
    admin.locator("#prop-name").press("Tab")

    admin.click("#btn-validate")
    expect(modeler).to_have_attribute("data-validated", "problems")
    problem = admin.locator("#problems button.problem")
    expect(problem).to_contain_text("no_such_form.json")
    expect(admin.locator(f".djs-element.hall-problem[data-element-id='{ids['first']}']")).to_have_count(1)
    expect(admin.locator(".hall-problem-badge")).to_have_count(1)
    shots.take(admin, "modeler-problem")
    admin.click(".djs-palette [data-action='hand-tool']")  # away from the task: the list must select it again
    problem.click()
    expect(admin.locator("#prop-form")).to_have_value("no_such_form.json")

    admin.fill("#prop-form", "")
    admin.locator("#prop-form").press("Tab")
    admin.click("#btn-validate")
    expect(modeler).to_have_attribute("data-validated", "ok")
    expect(admin.locator(".hall-problem-badge")).to_have_count(0)
    admin.click("#btn-deploy")
    expect(admin.locator("#deploy-confirm")).to_contain_text("新流程，第 1 版")
    admin.click("#btn-deploy-confirm")
    expect(modeler).to_have_attribute("data-deployed", "drawn_request:1")
    expect(admin.locator("#versions")).to_contain_text("v1")
    shots.take(admin, "modeler-deployed")
    assert refused == [], refused

    teacher = phone()
    visit = Visit(screenshots, request.node.name.removeprefix("test_") + "-phone")
    sign_in(teacher, live_server, "t1001")
    teacher.goto(live_server + "/services?q=画出来")
    visit.check(teacher, "services")
    teacher.click("button[aria-label='发起画出来的申请']")
    expect(teacher.locator("h1")).to_have_text("填写申请")
    visit.check(teacher, "task-first")
    teacher.click("button[value=submit]")
    teacher.click("a.button:has-text('去办理')")
    expect(teacher.locator("h1")).to_have_text("部门确认")
    teacher.click("button[value=submit]")
    expect(teacher.locator("[data-state]")).to_have_attribute("data-state", "completed")
    marks = diagram_marks(teacher)
    assert {marks.get(ids[k]) for k in ("start", "first", "second", "end")} == {"done"}, marks
    visit.check(teacher, "instance-completed")


def test_modeler_opens_a_deployed_version(admin_hall, live_server, desktop, deploy_bpmn, screenshots,  # noqa: F811
                                          request):
    """Opening a version from the process list loads its diagram into the modeler with its version list."""
    from tests.web.test_diagram import two_step_bpmn

    deploy_bpmn(two_step_bpmn("stamp_request", "盖章申请"), {}, "stamp_request.bpmn")
    admin = desktop()
    sign_in(admin, live_server, "admin")
    admin.goto(live_server + "/admin/processes")
    expect(admin.locator("tr[data-key=stamp_request]")).to_contain_text("v1")
    Shots(screenshots, request.node.name.removeprefix("test_")).take(admin, "processes")
    admin.click("tr[data-key=stamp_request] a:has-text('打开')")
    expect(admin.locator("#modeler")).to_have_attribute("data-ready", "true")
    assert {"fill", "confirm", "start", "end"} <= set(_elements(admin))
    expect(admin.locator("#versions")).to_contain_text("v1")
    expect(admin.locator("#prop-id")).to_have_value("stamp_request")


def test_deploy_of_the_blank_diagram_asks_first_and_warns(admin_hall, live_server, phone, screenshots,  # noqa: F811
                                                          request):
    """部署 on the blank diagram warns at 校验, then shows what would be published (key, name, version, who may
    start it) in a confirmation; 取消 deploys nothing, 确认部署 deploys version 1."""
    from hall.extensions import db
    from hall.processes.models import ProcessDefinition

    admin = phone()
    sign_in(admin, live_server, "admin")
    admin.goto(live_server + "/admin/modeler")
    modeler = admin.locator("#modeler")
    expect(modeler).to_have_attribute("data-ready", "true")
    admin.click("#btn-validate")
    expect(modeler).to_have_attribute("data-validated", "warnings")
    expect(admin.locator("#problems")).to_contain_text("没有任何用户任务")
    admin.click("#btn-deploy")
    dialog = admin.locator("#deploy-confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("新流程（Process_")
    expect(dialog).to_contain_text("所有用户（含学生）都可发起")
    expect(dialog).to_contain_text("没有任何用户任务")
    Shots(screenshots, request.node.name.removeprefix("test_")).take(admin, "deploy-confirm")
    dialog.locator("button[value=cancel]").click()
    expect(admin.locator("#modeler-status")).to_have_text("已取消部署")
    assert db.session.scalar(db.select(db.func.count()).select_from(ProcessDefinition)) == 0
    admin.click("#btn-deploy")
    admin.click("#btn-deploy-confirm")
    expect(modeler).to_have_attribute("data-deployed", re.compile(r"Process_\w+:1"))
