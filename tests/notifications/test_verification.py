"""A notification address of one's own choosing is used only once its owner has typed the code the hall sent
there (a real SMTP server and the fake WeCom API): nobody can have the hall send their messages to another
person's mailbox or WeCom account."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from hall.db_types import utcnow
from hall.extensions import db
from tests.notifications.helpers import dispatch, head_task_flow, start, user

NEW = "lihua.home@example.edu.cn"


def _code(text: str) -> str:
    return re.search(r"验证码为 (\d{6})", text).group(1)


def _mailed_code(smtp_server, address: str) -> str:
    [mail] = [m for m in smtp_server.mails if m["To"] == address and "验证码" in m["Subject"]]
    return _code(mail.get_body(("plain",)).get_content())


def _age_code(username: str) -> None:
    """Make the last code a minute old, as if the person had waited before asking for another."""
    from hall.notifications.models import ChannelPreference

    db.session.rollback()
    pref = db.session.get(ChannelPreference, user(username).id)
    pref.verification = {channel: {**entry, "sent_at": (utcnow() - timedelta(seconds=61)).isoformat()}
                         for channel, entry in pref.verification.items()}
    db.session.commit()


def test_a_new_mailbox_gets_messages_only_after_its_code_comes_back(demo, deploy_bpmn, api, smtp_server):
    """h2001 chooses mail to a new address: a code goes there, messages still go to the account's address;
    a wrong code is 422; the right one verifies it and the next message goes to the new address."""
    api.login("h2001")
    saved = api.put("me/channels", {"channels": ["mail"], "email": NEW})
    assert saved.status_code == 200 and saved.get_json()["email_verified"] is False
    code = _mailed_code(smtp_server, NEW)

    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    assert [m["To"] for m in smtp_server.mails if "新待办" in m["Subject"]] == ["h2001@demo.example.edu.cn"]

    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    refused = api.post("me/channels/verify", {"channel": "mail", "code": wrong})
    assert refused.status_code == 422 and refused.get_json()["errors"] == {"code": ["验证码不正确"]}
    verified = api.post("me/channels/verify", {"channel": "mail", "code": code})
    assert verified.status_code == 200 and verified.get_json()["email_verified"] is True

    start()
    dispatch()
    assert [m["To"] for m in smtp_server.mails if "新待办" in m["Subject"]] == ["h2001@demo.example.edu.cn", NEW]


def test_the_accounts_own_address_needs_no_code(demo, api, smtp_server):
    """Choosing mail to the address the account already has sends no code and is verified at once."""
    api.login("h2001")
    saved = api.put("me/channels", {"channels": ["mail"], "email": "h2001@demo.example.edu.cn"})
    assert saved.status_code == 200 and saved.get_json()["email_verified"] is True
    assert smtp_server.mails == []


def test_five_wrong_codes_or_an_old_code_need_a_new_one(demo, api, smtp_server):
    """After five wrong tries even the right code is refused (409), as is a code past its 30 minutes; asking
    for another code within a minute is 429; saving the address again later sends a new code that works."""
    from hall.notifications.models import ChannelPreference

    api.login("h2001")
    api.put("me/channels", {"channels": ["mail"], "email": NEW})
    code = _mailed_code(smtp_server, NEW)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    for _ in range(5):
        assert api.post("me/channels/verify", {"channel": "mail", "code": wrong}).status_code == 422
    locked = api.post("me/channels/verify", {"channel": "mail", "code": code})
    assert locked.status_code == 409 and "重新保存" in locked.get_json()["message"]

    again = api.put("me/channels", {"email": NEW})
    assert again.status_code == 429 and again.get_json()["message"] == "验证码刚刚发送过，请 1 分钟后再试"
    _age_code("h2001")
    smtp_server.mails.clear()
    api.put("me/channels", {"email": NEW})
    code = _mailed_code(smtp_server, NEW)
    pref = db.session.get(ChannelPreference, user("h2001").id)
    pref.verification = {"mail": {**pref.verification["mail"],
                                  "expires_at": (utcnow() - timedelta(minutes=1)).isoformat()}}
    db.session.commit()
    assert api.post("me/channels/verify", {"channel": "mail", "code": code}).status_code == 409

    _age_code("h2001")
    smtp_server.mails.clear()
    api.put("me/channels", {"email": NEW})
    fresh = _mailed_code(smtp_server, NEW)
    assert api.post("me/channels/verify", {"channel": "mail", "code": fresh}).status_code == 200
    db.session.rollback()
    assert db.session.scalar(sa.select(ChannelPreference.verified_email).where(
        ChannelPreference.user_id == user("h2001").id)) == NEW


def test_a_code_that_cannot_be_sent_saves_nothing(demo, api, smtp_server):
    """When the mail server refuses the new address, the answer is 422 naming the field and the earlier
    choice stays as it was."""
    api.login("h2001")
    smtp_server.refuse = True
    refused = api.put("me/channels", {"channels": ["mail"], "email": NEW})
    assert refused.status_code == 422 and "验证码发送失败" in refused.get_json()["errors"]["email"][0]
    assert api.get("me/channels").get_json()["channels"] == []


def test_a_wecom_account_is_verified_through_wecom(demo, deploy_bpmn, api, app, monkeypatch, receiver):
    """A WeCom account id gets its code as a WeCom application message; until the code comes back no message
    goes to that account; after it, they do."""
    for name, value in {"WECOM_CORP_ID": "corp1", "WECOM_SECRET": "s3cret", "WECOM_AGENT_ID": "1000002",
                        "WECOM_API_BASE": receiver.url}.items():
        monkeypatch.setitem(app.config, name, value)
    api.login("h2001")
    saved = api.put("me/channels", {"channels": ["wecom_app"], "wecom_user_id": "LiHua"})
    assert saved.status_code == 200 and saved.get_json()["wecom_user_id_verified"] is False

    def sent_texts():
        return [body["text"]["content"] for path, _, body in receiver.requests
                if path.startswith("/cgi-bin/message/send") and body["touser"] == "LiHua"]

    [code_text] = sent_texts()
    head_task_flow(deploy_bpmn)
    start()
    dispatch()
    assert len(sent_texts()) == 1  # the new task's message did not go to the unverified account
    assert api.post("me/channels/verify", {"channel": "wecom_app", "code": _code(code_text)}).status_code == 200
    start()
    dispatch()
    assert any(text.startswith("新待办") for text in sent_texts())
