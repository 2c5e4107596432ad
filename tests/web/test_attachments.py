"""The 附件 card of the task page on a phone: upload, list and download a file; a refused file (wrong type,
too large) is explained beside the upload field and nothing is stored."""

from __future__ import annotations

import re

import pytest
from flask_babel import refresh
from playwright.sync_api import expect

from tests.web.leave_steps import fill_leave, open_approval, open_leave_form, submit_filled_leave, submit_leave
from tests.web.test_pages import Visit, sign_in

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def visit(request, screenshots):
    return Visit(screenshots, request.node.name.removeprefix("test_"))


def upload(page, name: str, content: bytes, mime: str) -> int:
    """Choose a file in the upload field, press 上传, and return the HTTP status of the upload."""
    page.set_input_files("#attachment-file", files=[{"name": name, "mimeType": mime, "buffer": content}])
    with page.expect_response(re.compile(r"/tasks/\d+/attachments$")) as posted:
        page.click("button:has-text('上传')")
    return posted.value.status


def test_uploaded_pdf_is_listed_and_downloads_the_same_bytes(demo, live_server, phone, visit):
    """A PDF uploaded on the task page is listed in 附件, and its link downloads exactly the uploaded bytes."""
    page = phone()
    open_leave_form(page, live_server)
    expect(page.locator("#attachments")).to_contain_text("暂无附件")
    assert upload(page, "病历证明.pdf", PDF, "application/pdf") == 302
    link = page.locator("#attachments a.item", has_text="病历证明.pdf")
    expect(link).to_be_visible()
    expect(page.locator(".flash")).to_contain_text("已上传附件「病历证明.pdf」")
    visit.check(page, "attachment-listed")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "病历证明.pdf"
    assert open(download.value.path(), "rb").read() == PDF


def test_executable_is_refused_with_the_reason_beside_the_field(demo, live_server, phone, visit):
    """Uploading a .exe leads back to the task page with 不支持的文件类型 beside the upload field, and nothing
    is listed."""
    page = phone()
    open_leave_form(page, live_server)
    assert upload(page, "setup.exe", b"MZ\x90\x00" + b"\x00" * 100, "application/octet-stream") == 302
    expect(page.locator("#file-error")).to_contain_text("不支持的文件类型")
    expect(page.locator("#attachment-file")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#attachments a.item")).to_have_count(0)
    visit.check(page, "attachment-wrong-type")


def test_file_over_the_limit_is_refused_in_the_page_with_text_kept(demo, live_server, phone, visit):
    """A 300 KB PDF (the test limit is 256 KB) is refused by the page before anything is sent: 文件过大 and
    the limit in words beside the field, the typed text still there, nothing listed."""
    page = phone()
    open_leave_form(page, live_server)
    page.fill("#f-reason", "扫描件较大。")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/attachments") else None)
    big = PDF + b"0" * (300 * 1024)
    page.set_input_files("#attachment-file", files=[{"name": "扫描件.pdf", "mimeType": "application/pdf",
                                                     "buffer": big}])
    page.click("button:has-text('上传')")
    expect(page.locator("#file-error")).to_have_text("文件过大，单个附件不能超过 256 KB")
    expect(page.locator("#attachment-file")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-reason")).to_have_value("扫描件较大。")
    expect(page.locator("#attachments")).to_contain_text("暂无附件")
    assert sent == []
    visit.check(page, "attachment-too-large")


def test_file_over_the_limit_sent_anyway_is_refused_by_the_server(demo, api):
    """A 300 KB file that reaches the server (no script) is refused: back to the task page with 文件过大
    beside the field, nothing stored."""
    import io

    api.login("t1001")
    api.post("process-instances", {"definition": "leave_request"})
    task = api.get("tasks?view=mine").get_json()["items"][0]
    answer = api.client.post(f"/tasks/{task['id']}/attachments", content_type="multipart/form-data", data={
        "_csrf": api.csrf, "file": (io.BytesIO(PDF + b"0" * (300 * 1024)), "扫描件.pdf")})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/tasks/{task['id']}#attachments")
    body = api.client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert "文件过大，单个附件不能超过 256 KB" in body and 'id="file-error"' in body
    assert api.get(f"tasks/{task['id']}/attachments").get_json() == []


def test_head_sees_the_applicants_attachment_on_the_approval_page(demo, live_server, phone):
    """After the teacher submits with an attachment, the head's approval page lists it under the earlier
    step, with a download link that works for the head."""
    teacher = phone()
    open_leave_form(teacher, live_server)
    assert upload(teacher, "病历证明.pdf", PDF, "application/pdf") == 302
    fill_leave(teacher)
    submit_filled_leave(teacher)

    head = phone()
    sign_in(head, live_server, "h2001")
    head.goto(live_server + "/tasks")
    head.click("a.item:has-text('部门负责人审批')")
    link = head.locator(".step a.item", has_text="病历证明.pdf")
    expect(link).to_be_visible()
    with head.expect_download() as download:
        link.click()
    assert open(download.value.path(), "rb").read() == PDF


def test_file_field_of_a_schema_points_to_the_attachments_card():
    """A schema field with format data-url or ui:widget file is drawn as a pointer to the 附件 card."""
    from hall.web import forms

    schema = {"type": "object", "properties": {"proof": {"type": "string", "format": "data-url", "title": "证明"},
                                               "scan": {"type": "string", "title": "扫描件"}}}
    fields = forms.build_fields(schema, {"scan": {"ui:widget": "file"}}, {}, {})
    assert [(f.name, f.widget) for f in fields] == [("proof", "file"), ("scan", "file")]


def test_upload_keeps_what_was_typed_in_the_form(demo, live_server, phone):
    """Text typed into the task form is still there after uploading a file: the upload saves it as the draft."""
    page = phone()
    open_leave_form(page, live_server)
    page.fill("#f-reason", "发烧就医，需要休息。")
    page.fill("#f-days", "2")
    assert upload(page, "病历证明.pdf", PDF, "application/pdf") == 302
    expect(page.locator("#attachments a.item", has_text="病历证明.pdf")).to_be_visible()
    expect(page.locator("#f-reason")).to_have_value("发烧就医，需要休息。")
    expect(page.locator("#f-days")).to_have_value("2")


def test_refused_upload_lands_on_the_task_page_with_text_kept(demo, live_server, phone):
    """A refused upload leaves the browser on /tasks/<id> (not the POST-only upload URL), the reason beside the
    field and the typed text kept; switching to English then shows the task page, not 405."""
    page = phone()
    open_leave_form(page, live_server)
    page.fill("#f-reason", "陪护家人。")
    assert upload(page, "setup.exe", b"MZ" + b"\x00" * 100, "application/octet-stream") == 302
    assert re.search(r"/tasks/\d+#attachments$", page.url), page.url
    expect(page.locator("#file-error")).to_contain_text("不支持的文件类型")
    expect(page.locator("#f-reason")).to_have_value("陪护家人。")
    page.click("header a.lang")
    expect(page.locator("h1")).to_have_text("填写请假单")  # the step's name is the diagram's
    expect(page.locator("nav.tabs")).to_contain_text("To do")
    expect(page.locator("#file-error")).to_have_count(0)  # shown once, where it happened
    expect(page.locator("#f-reason")).to_have_value("陪护家人。")


def test_comment_keeps_what_was_typed_in_the_form(demo, live_server, phone):
    """Posting a comment on one's own task keeps the text typed into the task form."""
    page = phone()
    open_leave_form(page, live_server)
    page.fill("#f-reason", "参加培训。")
    page.fill("#comment-body", "培训通知稍后上传。")
    page.click("button[value=comment]")
    expect(page.locator("#comments .comment")).to_contain_text("培训通知稍后上传。")
    expect(page.locator("#f-reason")).to_have_value("参加培训。")


def test_empty_comment_lands_on_the_task_page_with_text_kept(demo, live_server, phone):
    """An empty comment leads back to /tasks/<id> with the message beside the comment box and the typed form
    text kept."""
    page = phone()
    open_leave_form(page, live_server)
    page.fill("#f-reason", "参加培训。")
    with page.expect_response(re.compile(r"/tasks/\d+$")) as posted:
        page.click("button[value=comment]")
    assert posted.value.status == 302
    assert re.search(r"/tasks/\d+#comments$", page.url), page.url
    expect(page.locator("#body-error")).to_have_text("评论内容不能为空")
    expect(page.locator("#f-reason")).to_have_value("参加培训。")


def test_method_not_allowed_page_is_translated(app, demo):
    """The 405 page's message goes through the translations: English when English is chosen."""
    client = app.test_client()
    assert "不支持此请求方法" in client.get("/logout").get_data(as_text=True)
    refresh()  # the test's shared app context caches the locale between requests; a server's does not
    body = client.get("/logout?lang=en").get_data(as_text=True)
    assert "This request method is not supported here" in body and "不支持此请求方法" not in body


def test_add_signer_keeps_what_was_typed_in_the_form(demo, live_server, phone):
    """加签 sends the task form along: the task waits for the signer with the typed text saved as its draft."""
    import sqlalchemy as sa

    from hall.extensions import db
    from hall.tasks.models import HumanTask

    page = phone()
    open_leave_form(page, live_server)
    task_id = int(re.search(r"/tasks/(\d+)", page.url).group(1))
    page.fill("#f-reason", "外出调研两天。")
    page.click("summary:has-text('加签')")
    page.fill("#signer", "t1002")
    with page.expect_response(re.compile(r"/tasks/\d+$")) as posted:
        page.click("button[value=add_signer]")
    assert posted.value.status == 302
    expect(page.locator(".flash")).to_contain_text("已加签")
    db.session.rollback()
    task = db.session.scalar(sa.select(HumanTask).where(HumanTask.id == task_id))
    assert task.state == "blocked"
    assert task.draft["reason"] == "外出调研两天。"


def test_transfer_hands_over_what_was_typed(demo, live_server, phone):
    """转办 sends the task form along: the head types an opinion, hands the approval to h2002, who opens it
    from 待办 and finds the opinion in the form; a transfer to nobody first keeps the text on the page."""
    submit_leave(phone(), live_server)
    head = phone()
    open_approval(head, live_server)
    head.fill("#f-opinion", "拟同意，请陈老师定夺。")
    head.click("summary:has-text('转办')")
    head.fill("#transfer-to", "nobody")
    head.click("button[value=transfer]")
    expect(head.locator("#username-error")).to_have_text("用户不存在")
    expect(head.locator("#f-opinion")).to_have_value("拟同意，请陈老师定夺。")
    head.fill("#transfer-to", "h2002")
    head.click("button[value=transfer]")
    expect(head.locator(".flash")).to_contain_text("已转办")

    other = phone()
    sign_in(other, live_server, "h2002")
    other.goto(live_server + "/tasks")
    other.click("a.item:has-text('部门负责人审批')")
    expect(other.locator("#f-opinion")).to_have_value("拟同意，请陈老师定夺。")
