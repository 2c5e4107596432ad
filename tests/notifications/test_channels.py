"""The channels against real servers: SMTP (aiosmtpd), the WeCom / DingTalk webhooks and the WeCom API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

import pytest
import sqlalchemy as sa

from hall.extensions import db
from tests.notifications.helpers import choose, dispatch, head_task_flow, start


def _deliveries():
    from hall.notifications.models import Delivery

    db.session.rollback()
    return list(db.session.scalars(sa.select(Delivery).order_by(Delivery.id)))


def _retry_until_settled(seconds: float = 10):
    """Run the retry sweep until no delivery waits for another attempt (bounded)."""
    from hall.notifications.tasks import deliver_due_job

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        deliver_due_job.delay()
        if all(d.state == "sent" or d.next_attempt_at is None for d in _deliveries()):
            return
        time.sleep(0.05)
    pytest.fail(f"deliveries not settled within {seconds} s: {[(d.state, d.last_error) for d in _deliveries()]}")


@pytest.fixture
def webhooks(app, monkeypatch, receiver):
    monkeypatch.setitem(app.config, "WECOM_WEBHOOK", receiver.url + "/cgi-bin/webhook/send?key=abc")
    monkeypatch.setitem(app.config, "DINGTALK_WEBHOOK", receiver.url + "/robot/send?access_token=xyz")
    return receiver


def test_mail_arrives_with_chinese_subject_and_body(demo, deploy_bpmn, smtp_server):
    """The SMTP server receives the mail; subject and body decode back to the Chinese text."""
    choose("h2001", ["mail"])
    head_task_flow(deploy_bpmn)
    _, task_id = start()
    dispatch()
    [mail] = smtp_server.mails
    assert mail["Subject"] == "新待办：步骤1"
    assert mail["To"] == "h2001@demo.example.edu.cn"
    body = mail.get_body(("plain",)).get_content()
    assert "等待您办理" in body and f"https://hall.example.edu.cn/tasks/{task_id}" in body
    assert mail["Message-ID"] == f"<{_deliveries()[0].idempotency_key}@quality-hall>"
    assert [d.state for d in _deliveries()] == ["sent"]


def test_mail_refused_by_the_server_is_recorded_in_chinese(demo, deploy_bpmn, smtp_server, app, monkeypatch):
    """A refusing SMTP server: the delivery is failed with the server's reason, retried, never lost."""
    monkeypatch.setitem(app.config, "NOTIFY_MAX_ATTEMPTS", 2)
    smtp_server.refuse = True
    choose("h2001", ["mail"])
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    _retry_until_settled()
    [delivery] = _deliveries()
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert delivery.last_error.startswith("邮件服务器拒收收件人 h2001@demo.example.edu.cn：550")
    assert "不再自动重试" in delivery.last_error


def test_user_without_mail_address_fails_once_with_a_reason(demo, deploy_bpmn, smtp_server):
    """No address: the delivery fails at once with a Chinese reason and is not retried."""
    from tests.notifications.helpers import user

    choose("h2001", ["mail"])
    user("h2001").email = None
    db.session.commit()
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    _retry_until_settled()
    [delivery] = _deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("failed", 1, "用户未填写邮箱地址，无法发送邮件")
    assert smtp_server.mails == []


def test_wecom_and_dingtalk_robots_receive_their_json_format(demo, deploy_bpmn, webhooks):
    """WeCom gets msgtype text with the mobile mentioned; DingTalk gets msgtype markdown with atMobiles."""
    choose("h2001", ["wecom", "dingtalk"], mobile="13800000000")
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    posts = {path.split("?")[0]: body for path, _, body in webhooks.requests}
    assert posts["/cgi-bin/webhook/send"] == {"msgtype": "text", "text": {
        "content": posts["/cgi-bin/webhook/send"]["text"]["content"], "mentioned_mobile_list": ["13800000000"]}}
    assert posts["/cgi-bin/webhook/send"]["text"]["content"].startswith("新待办：步骤1\n")
    ding = posts["/robot/send"]
    assert ding["msgtype"] == "markdown"
    assert ding["markdown"]["title"] == "新待办：步骤1"
    assert ding["markdown"]["text"].startswith("### 新待办：步骤1")
    assert ding["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    assert sorted(webhooks.completed) == sorted(d.idempotency_key for d in _deliveries())


def test_dingtalk_secret_signs_the_webhook_url(demo, deploy_bpmn, webhooks, app, monkeypatch):
    """With HALL_DINGTALK_SECRET the post carries timestamp and the HMAC-SHA256 sign DingTalk checks."""
    monkeypatch.setitem(app.config, "DINGTALK_SECRET", "SEC-test-secret")
    choose("h2001", ["dingtalk"])
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    [(path, _, _)] = webhooks.requests
    query = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
    stamp = query["timestamp"][0]
    expected = base64.b64encode(hmac.new(b"SEC-test-secret", f"{stamp}\nSEC-test-secret".encode(),
                                         hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected]
    assert query["access_token"] == ["xyz"]


def test_webhook_answering_500_is_retried_and_delivered_once(demo, deploy_bpmn, webhooks):
    """The receiver answers 500 twice: the delivery backs off, retries, and succeeds exactly once."""
    webhooks.statuses = [500, 500]
    choose("h2001", ["dingtalk"])
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    [delivery] = _deliveries()
    assert (delivery.state, delivery.last_error) == ("failed", "钉钉群机器人返回 HTTP 500")
    _retry_until_settled()
    [delivery] = _deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("sent", 3, None)
    assert len(webhooks.requests) == 3
    assert webhooks.completed == [delivery.idempotency_key]


def test_bad_webhook_url_fails_with_a_reason_and_is_not_retried(demo, deploy_bpmn, app, monkeypatch):
    """A malformed webhook address is a permanent failure, recorded in Chinese, sent nowhere."""
    monkeypatch.setitem(app.config, "WECOM_WEBHOOK", "qyapi.weixin.qq.com/no-scheme")
    choose("h2001", ["wecom"])
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    _retry_until_settled()
    [delivery] = _deliveries()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == "企业微信群机器人地址无效：qyapi.weixin.qq.com/no-scheme"


def test_unreachable_webhook_is_retried_with_back_off(demo, deploy_bpmn, app, monkeypatch):
    """Nobody listening: each attempt fails with a connection reason and the next one waits longer."""
    from tests.test_worker import _free_port

    monkeypatch.setitem(app.config, "NOTIFY_RETRY_SECONDS", 60)
    monkeypatch.setitem(app.config, "NOTIFY_RETRY_MAX_SECONDS", 3600)
    monkeypatch.setitem(app.config, "DINGTALK_WEBHOOK", f"http://127.0.0.1:{_free_port()}/robot/send")
    choose("h2001", ["dingtalk"])
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    [delivery] = _deliveries()
    assert delivery.state == "failed" and delivery.last_error.startswith("无法连接钉钉群机器人")
    wait = (delivery.next_attempt_at - delivery.created_at).total_seconds()
    assert 59 <= wait <= 70


def test_wecom_application_message_uses_token_and_duplicate_check(demo, deploy_bpmn, receiver, app, monkeypatch):
    """The WeCom app API: gettoken, then message/send to the user's WeCom id with duplicate checking."""
    for name, value in {"WECOM_CORP_ID": "corp1", "WECOM_SECRET": "s3cret", "WECOM_AGENT_ID": "1000002",
                        "WECOM_API_BASE": receiver.url}.items():
        monkeypatch.setitem(app.config, name, value)
    choose("h2001", ["wecom_app"], wecom_user_id="LiHua")
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    paths = [path for path, _, _ in receiver.requests]
    assert paths[0].startswith("/cgi-bin/gettoken?corpid=corp1&corpsecret=s3cret")
    [(path, _, body)] = [r for r in receiver.requests if r[0].startswith("/cgi-bin/message/send")]
    assert path == "/cgi-bin/message/send?access_token=token-1"
    assert (body["touser"], body["msgtype"], body["agentid"], body["enable_duplicate_check"]) == (
        "LiHua", "text", 1000002, 1)
    assert body["text"]["content"].startswith("新待办：步骤1")
