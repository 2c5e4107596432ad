"""Administrator pages: only admins get in; the validate endpoint; users, roles and org units; the form
editor's live preview. Browser tests run at a desktop viewport (1366×768) and save screenshots."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hall.accounts.models import Role, User
from hall.extensions import db
from hall.org.models import OrgUnit
from hall.processes.models import ProcessDefinition
from tests.web.test_diagram import two_step_bpmn
from tests.web.test_pages import sign_in


class Shots:
    """Full-page screenshots of desktop pages, named like the phone ones."""

    def __init__(self, folder: Path, test: str):
        self.folder, self.test, self.count = folder, test, 0

    def take(self, page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.test}-{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path



@pytest.fixture
def shots(request, screenshots):
    return Shots(screenshots, request.node.name.removeprefix("test_"))


@pytest.fixture
def org(app, ctx):
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()


def _upload(xml: bytes, name: str = "p.bpmn", forms: dict[str, bytes] | None = None) -> dict:
    data = {"file": (io.BytesIO(xml), name)}
    if forms:
        data["forms"] = [(io.BytesIO(content), form) for form, content in forms.items()]
    return data


# -- access and the validate endpoint ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin/processes", "/admin/modeler", "/admin/forms", "/admin/users",
                                  "/admin/roles", "/admin/org-units"])
def test_admin_pages_refuse_other_people(org, api, path):
    """A teacher opening an administrator page gets the 403 page."""
    api.login("t1001")
    response = api.get(path)
    assert response.status_code == 403
    assert "没有权限" in response.get_data(as_text=True) or "管理员" in response.get_data(as_text=True)


def test_validate_names_the_element_and_stores_nothing(org, api):
    """POST /process-definitions/validate answers 200 with each problem's element id and deploys nothing."""
    api.login("admin")
    xml = two_step_bpmn("checked", "校验").replace(
        b'<bpmn:userTask id="fill" name="\xe5\xa1\xab\xe5\x86\x99"/>',
        b'<bpmn:userTask id="fill" name="x"><bpmn:extensionElements><spiffworkflow:properties>'
        b'<spiffworkflow:property name="formJsonSchemaFilename" value="gone.json"/></spiffworkflow:properties>'
        b'</bpmn:extensionElements></bpmn:userTask>').replace(
        b'xmlns:bpmn=', b'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" xmlns:bpmn=')
    response = api.post("process-definitions/validate", data=_upload(xml), content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["valid"] is False
    assert [p["element"] for p in body["problems"]] == ["fill"]
    assert "gone.json" in body["problems"][0]["reason"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) == 0


def test_validate_accepts_a_good_diagram(org, api):
    """A diagram deploy would accept validates with no problems and its process key."""
    api.login("admin")
    response = api.post("process-definitions/validate", data=_upload(two_step_bpmn("fine", "好的")),
                        content_type="multipart/form-data")
    body = response.get_json()
    assert {k: body[k] for k in ("valid", "key", "name", "problems", "warnings")} == {
        "valid": True, "key": "fine", "name": "好的", "problems": [], "warnings": []}
    assert body["publish"]["new_definition"] is True and body["publish"]["version"] == 1


BLANK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="Process_blank" name="新流程" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" name="开始"/>
  </bpmn:process>
</bpmn:definitions>
""".encode()


def test_validate_warns_that_a_process_without_user_tasks_ends_at_once(org, api):
    """The modeler's blank diagram validates, with a warning that nobody handles it and what deploy would publish."""
    api.login("admin")
    response = api.post("process-definitions/validate", data=_upload(BLANK), content_type="multipart/form-data")
    body = response.get_json()
    assert body["valid"] is True and body["problems"] == []
    assert len(body["warnings"]) == 1 and "没有任何用户任务" in body["warnings"][0]
    publish = body["publish"]
    assert (publish["key"], publish["category"], publish["in_catalogue"], publish["startable_by"]) == (
        "Process_blank", "其他", True, [])
    api.post("process-definitions", data=_upload(BLANK), content_type="multipart/form-data")
    again = api.post("process-definitions/validate", data=_upload(BLANK), content_type="multipart/form-data")
    assert again.get_json()["publish"] == publish | {"unchanged": True, "new_definition": False}


def test_validate_is_for_administrators(org, api):
    """A teacher may not use the validate endpoint."""
    api.login("t1001")
    response = api.post("process-definitions/validate", data=_upload(two_step_bpmn("fine", "好的")),
                        content_type="multipart/form-data")
    assert response.status_code == 403


# -- users, roles, org units -----------------------------------------------------------------------------

def test_admin_creates_a_user_with_a_role_in_a_unit(org, live_server, desktop, shots):
    """A user created on the users page holds the chosen role in the chosen unit and can be found by search."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users")
    shots.take(page, "users")
    page.fill("#new-username", "t1999")
    page.fill("#new-name", "王芳")
    page.fill("#new-password", "hall2026!")
    page.select_option("#new-unit", "xxgc")
    page.select_option("#new-role", "dept_head")
    page.click("button:has-text('创建用户')")
    expect(page.locator(".flash")).to_contain_text("已创建用户 t1999")
    row = page.locator("tr[data-username=t1999]")
    expect(row).to_contain_text("王芳")
    expect(row).to_contain_text("部门负责人 · ")
    shots.take(page, "user-created")
    user = db.session.scalar(sa.select(User).where(User.username == "t1999"))
    unit = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == "xxgc"))
    assert [(m.role_code, m.org_unit_id) for m in user.memberships] == [("dept_head", unit.id)]


def test_user_form_errors_are_shown_beside_the_fields(org, live_server, desktop, shots):
    """A user without a name and with a short password is refused with both messages inline, input kept."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users")
    page.fill("#new-username", "t1998")
    page.fill("#new-password", "short")
    page.click("button:has-text('创建用户')")
    expect(page.locator("#name-error")).to_have_text("请填写姓名")
    expect(page.locator("#password-error")).to_contain_text("至少 8 位")
    expect(page.locator("#new-username")).to_have_value("t1998")
    shots.take(page, "user-errors")


def test_deactivated_user_cannot_sign_in(org, live_server, desktop, api):
    """Deactivating a user on the users page stops that user's password sign-in."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users?q=t1001")
    page.click("tr[data-username=t1001] button:has-text('停用')")
    expect(page.locator("tr[data-username=t1001]")).to_contain_text("已停用")
    response = api.client.post("/api/v1/auth/login", json={"username": "t1001", "password": "hall2026"})
    assert response.status_code == 403 and response.get_json()["message"] == "账号已停用，请联系管理员"


def _try_sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('登录')")


def test_deactivated_user_is_told_so_only_with_the_right_password(org, live_server, phone):
    """A deactivated account with the right password reads 「账号已停用…」; a wrong one reads as any failure."""
    from hall.accounts import services as accounts

    accounts.set_user_active(accounts.get_user("t1002").id, False)
    page = phone()
    _try_sign_in(page, live_server, "t1002", "hall2026")
    expect(page.locator(".error")).to_contain_text("账号已停用，请联系管理员")
    _try_sign_in(page, live_server, "t1002", "wrong-password")
    expect(page.locator(".error")).to_contain_text("用户名或密码错误")
    expect(page.locator(".error")).not_to_contain_text("停用")


def test_bad_username_email_and_phone_are_refused_beside_the_fields(org, live_server, desktop):
    """Username with markup and spaces, email not-an-email, phone 123: refused field by field, nothing created."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users")
    page.fill("#new-username", "<b>x</b> 空格")
    page.fill("#new-name", "某人")
    page.fill("#new-password", "hall2026!")
    page.fill("#new-email", "not-an-email")
    page.fill("#new-phone", "123")
    page.click("button:has-text('创建用户')")
    expect(page.locator("#username-error")).to_contain_text("只能包含字母、数字")
    expect(page.locator("#email-error")).to_contain_text("邮箱格式不正确")
    expect(page.locator("#phone-error")).to_contain_text("电话格式不正确")
    expect(page.locator("#new-email")).to_have_value("not-an-email")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.name == "某人")) == 0


def test_admin_edits_a_user_and_resets_the_password(org, live_server, desktop, api):
    """Editing t1002's email and phone saves them; a short new password is refused inline; a good one signs in."""
    from hall.audit.models import AuditEvent

    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users?q=t1002")
    page.click("tr[data-username=t1002] a:has-text('编辑')")
    page.fill("#edit-email", "bad@")
    page.click("button:has-text('保存')")
    expect(page.locator("#email-error")).to_contain_text("邮箱格式不正确")
    page.fill("#edit-email", "wangfang@college.edu.cn")
    page.fill("#edit-phone", "13800138000")
    page.click("button:has-text('保存')")
    expect(page.locator(".flash")).to_contain_text("已保存用户 t1002")
    db.session.expire_all()
    user = db.session.scalar(sa.select(User).where(User.username == "t1002"))
    assert (user.email, user.phone, user.active) == ("wangfang@college.edu.cn", "13800138000", True)
    page.fill("#reset-password", "short")
    page.click("button:has-text('重置密码')")
    expect(page.locator("#password-error")).to_contain_text("至少 8 位")
    page.fill("#reset-password", "new-pass-2026")
    page.click("button:has-text('重置密码')")
    expect(page.locator(".flash")).to_contain_text("已重置用户 t1002 的密码")
    db.session.expire_all()  # the live server changed the row this test's session holds
    assert api.client.post("/api/v1/auth/login", json={"username": "t1002", "password": "hall2026"}).status_code == 401
    api.login("t1002", "new-pass-2026")
    kinds = set(db.session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.actor == "admin")))
    assert {"user_updated", "user_password_reset"} <= kinds


def test_admin_adds_and_removes_a_role_on_the_user_page(org, live_server, desktop):
    """On t1002's page the administrator adds 督导 (college-wide), sees it listed by name, then removes it."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users?q=t1002")
    page.click("tr[data-username=t1002] a:has-text('编辑')")
    page.click("button:has-text('添加角色')")
    expect(page.locator("#role-error")).to_contain_text("请选择已有的角色")
    page.select_option("#add-role", "supervisor")
    page.click("button:has-text('添加角色')")
    item = page.locator(".memberships li[data-role=supervisor]")
    expect(item).to_contain_text("督导 · 全校")
    item.locator("button:has-text('移除')").click()
    expect(page.locator(".flash")).to_contain_text("已移除 t1002 的一个角色")
    expect(page.locator(".memberships li[data-role=supervisor]")).to_have_count(0)


def test_admin_lists_fit_a_phone_without_breaking_codes(org, live_server, phone, screenshots):
    """At 390 px the users list shows each row as a card with role names, and no username is broken mid-word."""
    page = phone()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users?q=20240101")
    row = page.locator("tr[data-username='20240101']")
    expect(row).to_contain_text("学生 · ")
    expect(row).not_to_contain_text("student@")
    # An inline element has one client rectangle per line it occupies.
    assert row.locator("td.code a").evaluate("el => el.getClientRects().length") == 1
    page.screenshot(path=str(screenshots / "admin-users-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_user_search_pages_through_results(org, live_server, desktop):
    """The user list is paginated (20 a page) and the search narrows it."""
    from hall.accounts.services import create_user

    for i in range(25):
        create_user(f"s9{i:03d}", f"学生{i}", commit=False)
    db.session.commit()
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/users?q=s9")
    expect(page.locator("h1")).to_contain_text("共 25 人")
    expect(page.locator("tbody tr")).to_have_count(20)
    page.click("a:has-text('下一页')")
    expect(page.locator("tbody tr")).to_have_count(5)


def test_admin_creates_a_role_and_refuses_a_duplicate(org, live_server, desktop, shots):
    """A new role appears in the list; the same code again is refused beside the code field."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/roles")
    page.fill("#role-code", "lab_manager")
    page.fill("#role-name", "实验室主任")
    page.click("button:has-text('创建角色')")
    expect(page.locator("tr[data-role=lab_manager]")).to_contain_text("实验室主任")
    page.fill("#role-code", "lab_manager")
    page.fill("#role-name", "又一个")
    page.click("button:has-text('创建角色')")
    expect(page.locator("#code-error")).to_contain_text("已存在")
    shots.take(page, "roles")
    assert db.session.get(Role, "lab_manager").name == "实验室主任"


def test_admin_creates_a_unit_under_a_parent(org, live_server, desktop, shots):
    """A unit created with a parent sits under it in the tree (its path extends the parent's)."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/org-units")
    page.fill("#unit-code", "xxgc-ai")
    page.fill("#unit-name", "人工智能教研室")
    page.select_option("#unit-kind", "office")
    page.select_option("#unit-parent", "xxgc")
    page.click("button:has-text('创建单位')")
    expect(page.locator(".flash")).to_contain_text("已创建单位")
    expect(page.locator("li[data-unit='xxgc-ai']")).to_be_visible()
    shots.take(page, "org-units")
    parent = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == "xxgc"))
    child = db.session.scalar(sa.select(OrgUnit).where(OrgUnit.code == "xxgc-ai"))
    assert child.parent_id == parent.id and child.path == f"{parent.path}{child.id}/"


# -- forms -------------------------------------------------------------------------------------------

def test_form_editor_previews_while_typing_and_shows_bad_json(org, live_server, desktop, shots):
    """Typing a field into the schema draws it in the preview; broken JSON shows the parse error instead."""
    page = desktop()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/forms")
    shots.take(page, "forms")
    page.goto(live_server + "/admin/forms/edit?name=leave_apply.json")
    preview = page.locator("#preview")
    expect(preview).to_have_attribute("data-state", "ok")
    expect(preview.locator(".field").first).to_be_visible()
    page.fill("#schema-text", '{"type": "object", "required": ["room"], "properties": {"room": {"type": "string", '
                              '"title": "会议室", "enum": ["a", "b"], "enumNames": ["一号", "二号"]}}}')
    expect(preview.locator("[data-field=room] legend")).to_contain_text("会议室")
    expect(preview.locator("input[name=room]")).to_have_count(2)
    shots.take(page, "form-preview")
    page.fill("#schema-text", '{"type": "object", "properties": {')
    expect(preview).to_have_attribute("data-state", "error")
    expect(preview.locator(".preview-error")).to_contain_text("JSON 格式错误：第 1 行第 35 列：内容不完整")
    page.fill("#schema-text", '{"type": "object", "properties": {"n": {"type": "nonsense"}}}')
    expect(preview.locator(".preview-error")).to_contain_text(
        '不是有效的 JSON Schema：properties/n/type 处的 "nonsense"：type 只能是')
    shots.take(page, "form-error")


def test_form_file_serves_forms_of_deployed_versions(org, api, deploy_bpmn):
    """The modeler's form lookup returns a form stored with the latest version of a process."""
    from tests.web.test_pages import SWAP_BPMN, SWAP_FORMS

    deploy_bpmn(SWAP_BPMN, SWAP_FORMS, "course_swap.bpmn")
    api.login("admin")
    response = api.get("/admin/forms/file?name=swap_approve.json")
    assert response.get_json() == SWAP_FORMS["swap_approve.json"]
    assert api.get("/admin/forms/file?name=nothing.json").status_code == 404


def test_admin_disables_a_process_from_the_list_on_a_phone(org, live_server, phone, deploy_bpmn, screenshots):
    """On a phone the process list keeps keys whole; 停用 marks the row 已停用 and 启用 puts it back in 办事."""
    from hall.processes import services as processes

    deploy_bpmn(two_step_bpmn("stamp_request", "盖章申请"), {}, "stamp_request.bpmn")
    page = phone()
    sign_in(page, live_server, "admin")
    page.goto(live_server + "/admin/processes")
    row = page.locator("tr[data-key=stamp_request]")
    assert row.locator("small.code").evaluate("el => el.getClientRects().length") == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    row.locator("button:has-text('停用')").click()
    expect(page.locator(".flash")).to_contain_text("已停用流程「盖章申请」")
    expect(row.locator("td.state")).to_have_text("已停用")
    page.screenshot(path=str(screenshots / "admin-processes-phone.png"), full_page=True)
    db.session.expire_all()
    assert [d.key for d in processes.list_definitions(catalogue_only=True)] == []
    row.locator("button:has-text('启用')").click()
    expect(row.locator("td.state")).to_have_text("在办事中")
