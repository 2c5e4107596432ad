"""The message centre: messages from instance events (the outbox), the API, urge, transfer with a due time."""

from __future__ import annotations

from datetime import timedelta

from hall.db_types import utcnow
from hall.extensions import db
from tests.conftest import bpmn_sequence
from tests.notifications.helpers import dispatch, head_task_flow, messages, start, user


def test_new_task_becomes_a_message_for_its_candidates(demo, deploy_bpmn):
    """A task waiting in the dept_head lane gives the department head one message linking to it."""
    head_task_flow(deploy_bpmn)
    instance_id, task_id = start()
    dispatch()
    found = messages("h2001", "task_created")
    assert [(m.title, m.task_id, m.instance_id) for m in found] == [("新待办：步骤1", task_id, instance_id)]


def test_starting_a_service_does_not_message_the_applicant_about_its_first_step(demo, deploy_bpmn):
    """The applicant is on the form of the service they just started: no 新待办 for it; later steps of theirs do
    give one."""
    from hall.tasks import services as tasks

    deploy_bpmn(bpmn_sequence("own_flow", 2, lane="applicant"))
    _, task_id = start("own_flow")
    dispatch()
    assert messages("t1001", "task_created") == []
    tasks.complete_task(task_id, user("t1001"), {}, expected_version=None)
    dispatch()
    assert [m.title for m in messages("t1001", "task_created")] == ["新待办：步骤2"]


def test_a_process_started_on_someones_behalf_messages_them_without_calling_it_an_application(demo, deploy_bpmn):
    """A process that is not a catalogue service (a warning to handle) does message its starter about the first
    step, and names it by its title, not as 申请."""
    diagram = bpmn_sequence("behalf_flow", 1, lane="applicant").decode().replace(
        'isExecutable="true">',
        'isExecutable="true"><bpmn:extensionElements><spiffworkflow:properties>'
        '<spiffworkflow:property name="inCatalogue" value="false"/></spiffworkflow:properties>'
        '</bpmn:extensionElements>', 1)
    deploy_bpmn(diagram.encode())
    start("behalf_flow", by_the_hall=True)
    dispatch()
    [message] = messages("t1001", "task_created")
    assert message.body == "「测试流程1 · 张伟」等待您办理。"


def test_dispatching_twice_writes_each_message_once(demo, deploy_bpmn):
    """The outbox cursor and the dedup keys keep a second run from repeating a message."""
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    dispatch()
    assert len(messages("h2001", "task_created")) == 1


def test_messages_api_lists_counts_and_marks_read(demo, deploy_bpmn, api):
    """GET /messages pages the messages with the unread count; read and read-all clear it."""
    head_task_flow(deploy_bpmn)
    start()
    start()
    dispatch()
    api.login("h2001")
    page = api.get("messages?unread=true").get_json()
    assert (page["total"], page["unread"]) == (2, 2)
    assert page["items"][0]["link"] == f"/tasks/{page['items'][0]['task_id']}"
    first = page["items"][0]["id"]
    assert api.post(f"messages/{first}/read").get_json()["read"] is True
    assert api.get("messages?unread=true").get_json()["unread"] == 1
    assert api.post("messages/read-all").get_json()["marked"] == 1
    assert api.get("messages").get_json() | {"items": None} == {"items": None, "total": 2, "unread": 0, "page": 1,
                                                                   "page_size": 20}


def test_reading_somebody_elses_message_is_not_found(demo, deploy_bpmn, api):
    """A message id of another user answers 404 with a Chinese message."""
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    message_id = messages("h2001")[0].id
    api.login("t1001")
    response = api.post(f"messages/{message_id}/read")
    assert response.status_code == 404
    assert "不存在" in response.get_json()["message"]


def test_urge_notifies_the_people_holding_the_task(demo, deploy_bpmn, api):
    """催办 by the applicant turns into an 催办 message for the department head."""
    head_task_flow(deploy_bpmn)
    instance_id, task_id = start()
    api.login("t1001")
    assert api.post(f"process-instances/{instance_id}/urge").status_code in (200, 201)
    dispatch()
    [urged] = messages("h2001", "urged")
    assert urged.task_id == task_id
    assert "张伟催办了申请" in urged.body


def test_urge_twice_in_a_day_is_refused_and_notifies_once(demo, deploy_bpmn, api):
    """The second 催办 of the day is 429 with a Chinese reason and adds no message."""
    head_task_flow(deploy_bpmn)
    instance_id, _ = start()
    api.login("t1001")
    api.post(f"process-instances/{instance_id}/urge")
    second = api.post(f"process-instances/{instance_id}/urge")
    assert second.status_code == 429
    assert "今天已经催办过" in second.get_json()["message"]
    dispatch()
    assert len(messages("h2001", "urged")) == 1


def test_urge_on_somebody_elses_application_is_not_found(demo, deploy_bpmn, api):
    """Only the applicant may urge: anybody else gets 404 and nobody is notified."""
    head_task_flow(deploy_bpmn)
    instance_id, _ = start()
    api.login("r3001")
    assert api.post(f"process-instances/{instance_id}/urge").status_code == 404
    dispatch()
    assert messages("h2001", "urged") == []


def test_transfer_sets_a_due_time_and_notifies_the_new_assignee(demo, deploy_bpmn, api):
    """转办 with due_at stores the due time on the task and messages the person it goes to."""
    head_task_flow(deploy_bpmn)
    _, task_id = start()
    due = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    api.login("h2001")
    response = api.post(f"tasks/{task_id}/transfer", {"username": "o3002", "due_at": due.isoformat()})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["due_at"].startswith(due.strftime("%Y-%m-%dT%H:%M:%S"))
    dispatch()
    [transferred] = messages("o3002", "transferred")
    assert "李华将申请" in transferred.body


def test_transfer_with_a_past_due_time_is_invalid(demo, deploy_bpmn, api):
    """A due time in the past is refused with 422 and the task stays where it was."""
    head_task_flow(deploy_bpmn)
    _, task_id = start()
    api.login("h2001")
    past = (utcnow() - timedelta(hours=1)).isoformat()
    response = api.post(f"tasks/{task_id}/transfer", {"username": "o3002", "due_at": past})
    assert response.status_code == 422
    assert response.get_json()["errors"]["due_at"] == ["截止时间不能早于现在"]


def test_add_signer_gives_the_sign_task_its_due_time(demo, deploy_bpmn, api):
    """加签 with due_at puts the due time on the signer's task, and the signer gets a message."""
    head_task_flow(deploy_bpmn)
    _, task_id = start()
    due = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    api.login("h2001")
    response = api.post(f"tasks/{task_id}/add-signer", {"username": "l3003", "due_at": due.isoformat()})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["due_at"].startswith(due.strftime("%Y-%m-%dT%H:%M:%S"))
    dispatch()
    assert [m.kind for m in messages("l3003")] == ["signer_added"]


def test_channels_api_refuses_an_unconfigured_channel_and_a_missing_address(demo, api, app, monkeypatch):
    """PUT /me/channels: an unconfigured channel and mail without an address are 422 with Chinese reasons."""
    api.login("20240101")
    response = api.put("me/channels", {"channels": ["dingtalk"]})
    assert response.status_code == 422
    assert response.get_json()["errors"]["channels"] == ["大厅未配置钉钉群机器人"]
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    user("20240101").email = None
    db.session.commit()
    response = api.put("me/channels", {"channels": ["mail"]})
    assert response.get_json()["errors"]["email"] == ["选择邮件通知需要填写邮箱地址"]


def test_channels_api_saves_the_choice(demo, api, smtp_server):
    """PUT /me/channels stores channels, address and digest; GET returns them with the available channels
    and whether the address is verified (a new one not yet: a code went there)."""
    api.login("t1001")
    saved = api.put("me/channels", {"channels": ["mail"], "email": "zhangwei@example.edu.cn", "digest": True})
    assert saved.status_code == 200, saved.get_json()
    body = api.get("me/channels").get_json()
    assert (body["channels"], body["email"], body["digest"], body["available"], body["email_verified"]) == (
        ["mail"], "zhangwei@example.edu.cn", True, ["mail"], False)
    assert [mail["To"] for mail in smtp_server.mails] == ["zhangwei@example.edu.cn"]


def test_message_page_shows_messages_and_header_badge(demo, deploy_bpmn, api):
    """/messages lists the messages with the unread count, and the header shows the badge on every page."""
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    client = api.login("h2001").client
    page = client.get("/messages").get_data(as_text=True)
    assert "新待办：步骤1" in page
    assert 'id="unread-count">1<' in page
    assert 'class="badge"' in client.get("/").get_data(as_text=True)
