"""The process diagram on the instance and task pages (bpmn-js viewer, phone): finished steps carry the
`hall-done` marker, current steps `hall-current`, and the diagram never makes the page scroll sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.test_pages import Visit, sign_in


def two_step_bpmn(key: str, name: str) -> bytes:
    """Start → 填写 → 确认 → end, with a diagram layout (bpmn-js draws only what has DI); no lanes, so the
    starter handles both steps."""
    shapes = [("start", 150, 100, 36, 36, "bpmn:startEvent"), ("fill", 240, 78, 100, 80, "bpmn:userTask"),
              ("confirm", 400, 78, 100, 80, "bpmn:userTask"), ("end", 560, 100, 36, 36, "bpmn:endEvent")]
    names = {"fill": "填写", "confirm": "确认"}
    nodes = "".join(f'<{tag} id="{i}"{f" name={chr(34)}{names[i]}{chr(34)}" if i in names else ""}/>'
                    for i, *_, tag in shapes)
    flows = [("f1", "start", "fill"), ("f2", "fill", "confirm"), ("f3", "confirm", "end")]
    xml_flows = "".join(f'<bpmn:sequenceFlow id="{f}" sourceRef="{s}" targetRef="{t}"/>' for f, s, t in flows)
    di_shapes = "".join(f'<bpmndi:BPMNShape id="{i}_di" bpmnElement="{i}"><dc:Bounds x="{x}" y="{y}" '
                        f'width="{w}" height="{h}"/></bpmndi:BPMNShape>' for i, x, y, w, h, _ in shapes)
    box = {i: (x, y, w, h) for i, x, y, w, h, _ in shapes}
    di_edges = "".join(
        f'<bpmndi:BPMNEdge id="{f}_di" bpmnElement="{f}"><di:waypoint x="{box[s][0] + box[s][2]}" '
        f'y="{box[s][1] + box[s][3] // 2}"/><di:waypoint x="{box[t][0]}" y="{box[t][1] + box[t][3] // 2}"/>'
        f'</bpmndi:BPMNEdge>' for f, s, t in flows)
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" id="defs" targetNamespace="http://hall.test">
  <bpmn:process id="{key}" name="{name}" isExecutable="true">{nodes}{xml_flows}</bpmn:process>
  <bpmndi:BPMNDiagram id="d1"><bpmndi:BPMNPlane id="p1" bpmnElement="{key}">{di_shapes}{di_edges}
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>'''.encode()


MARKS = """() => {
  const marks = {};
  for (const el of document.querySelectorAll('.diagram .djs-element[data-element-id]')) {
    const id = el.getAttribute('data-element-id');
    if (el.classList.contains('hall-done')) marks[id] = 'done';
    if (el.classList.contains('hall-current')) marks[id] = 'current';
  }
  return marks;
}"""


def diagram_marks(page) -> dict[str, str]:
    """Element id -> 'done' | 'current' once the diagram has been drawn."""
    expect(page.locator(".diagram")).to_have_attribute("data-ready", "true")
    return page.evaluate(MARKS)


@pytest.fixture
def stamp_service(app, ctx, deploy_bpmn):
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()
    deploy_bpmn(two_step_bpmn("stamp_request", "盖章申请"), {}, "stamp_request.bpmn")


@pytest.fixture
def visit(request, screenshots):
    return Visit(screenshots, request.node.name.removeprefix("test_"))


def test_diagram_marks_done_and_current_steps_on_a_phone(stamp_service, live_server, phone, visit):
    """After the first step, the instance page's diagram shows start and 填写 done and 确认 current; the task
    page shows the same diagram; neither page scrolls sideways at 390 px nor breaks the CSP."""
    page = phone()
    refused = []
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    sign_in(page, live_server, "t1001")
    page.goto(live_server + "/services")
    page.click("button[aria-label='发起盖章申请']")
    expect(page.locator("h1")).to_have_text("填写")
    assert diagram_marks(page) == {"start": "done", "fill": "current"}
    visit.check(page, "task-diagram")
    page.click("button[value=submit]")
    expect(page.locator("[data-state]")).to_have_attribute("data-state", "running")
    assert diagram_marks(page) == {"start": "done", "fill": "done", "confirm": "current"}
    box = page.locator(".diagram-canvas svg[data-element-id]").bounding_box()
    assert box["width"] <= 390, "the diagram is wider than the phone"
    visit.check(page, "instance-diagram-running")
    assert refused == [], refused  # the viewer runs under the hall's Content-Security-Policy


def test_finished_instance_has_every_step_marked_done(stamp_service, live_server, phone, visit):
    """When both steps are submitted the instance is completed and every flow node is marked done."""
    page = phone()
    sign_in(page, live_server, "t1001")
    page.goto(live_server + "/services")
    page.click("button[aria-label='发起盖章申请']")
    page.click("button[value=submit]")
    page.click("a.button:has-text('去办理')")
    page.click("button[value=submit]")
    expect(page.locator("[data-state]")).to_have_attribute("data-state", "completed")
    assert diagram_marks(page) == {"start": "done", "fill": "done", "confirm": "done", "end": "done"}
    visit.check(page, "instance-diagram-completed")


def test_diagram_zoom_buttons_change_the_scale(stamp_service, live_server, phone):
    """The ＋ button zooms the diagram in and 适应宽度 brings it back to the phone's width."""
    page = phone()
    sign_in(page, live_server, "t1001")
    page.goto(live_server + "/services")
    page.click("button[aria-label='发起盖章申请']")
    expect(page.locator(".diagram")).to_have_attribute("data-ready", "true")
    viewport = page.locator(".diagram .viewport")
    before = viewport.get_attribute("transform")
    page.click("[data-zoom=in]")
    expect(viewport).not_to_have_attribute("transform", before)
    page.click("[data-zoom=fit]")
    expect(viewport).to_have_attribute("transform", before)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


LANES_AND_MARK = """() => {
  const lanes = [...document.querySelectorAll('.diagram .djs-element.djs-shape[data-element-id^="lane_"] text')]
    .map(t => t.textContent.trim());
  const mark = document.querySelector('.diagram .bjs-powered-by').getBoundingClientRect();
  const covered = [];
  for (const el of document.querySelectorAll('.diagram .djs-element.djs-shape[data-element-id]')) {
    const id = el.getAttribute('data-element-id');
    if (id.startsWith('lane_') || el.closest('.djs-element') !== el) continue;
    const r = el.getBoundingClientRect();
    if (r.left < mark.right && r.right > mark.left && r.top < mark.bottom && r.bottom > mark.top) covered.push(id);
  }
  return {lanes, covered};
}"""


def test_diagram_names_lanes_by_role_and_its_mark_covers_no_step(demo, live_server, phone, visit):
    """On the leave instance page the lanes read 申请人 / 部门负责人 / 人事处, not the role codes the diagram holds,
    and bpmn.io's mark in the corner lies over no step of the diagram."""
    page = phone()
    sign_in(page, live_server, "t1001")
    page.goto(live_server + "/services")
    page.click("button[aria-label='发起请假申请']")
    expect(page.locator("h1")).to_have_text("填写请假单")
    diagram_marks(page)
    found = page.evaluate(LANES_AND_MARK)
    assert "申请人" in found["lanes"] and "部门负责人" in found["lanes"], found
    assert not {"applicant", "dept_head", "hr"} & set(found["lanes"]), found
    assert found["covered"] == [], found
    visit.check(page, "leave-diagram-lanes")
