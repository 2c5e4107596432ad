"""The outside channels: mail over SMTP, WeCom and DingTalk group robots, the WeCom application message API.

Every sender takes the message text, the recipient's address on that channel and the delivery's
idempotency key, and either returns or raises ChannelError with a reason in Chinese (recorded on the
Delivery). The key goes to the channel wherever it can carry one: the mail's Message-ID, an
X-Hall-Idempotency-Key header on webhook posts, WeCom's own duplicate check for application messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import requests

TIMEOUT = 10  # seconds for one network call; a held connection must not hold the worker forever


class ChannelError(Exception):
    """A send that did not happen; `permanent` ones (no address, channel not configured) are not retried."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass
class Outgoing:
    title: str
    body: str
    link: str | None
    address: str | None
    key: str


LABELS = {"mail": "邮件", "wecom": "企业微信群机器人", "dingtalk": "钉钉群机器人", "wecom_app": "企业微信应用消息"}


def configured(config) -> list[str]:
    """Channels this hall has settings for."""
    result = []
    if config.get("SMTP_HOST"):
        result.append("mail")
    if config.get("WECOM_WEBHOOK"):
        result.append("wecom")
    if config.get("DINGTALK_WEBHOOK"):
        result.append("dingtalk")
    if config.get("WECOM_CORP_ID") and config.get("WECOM_SECRET") and config.get("WECOM_AGENT_ID"):
        result.append("wecom_app")
    return result


def send(channel: str, config, out: Outgoing) -> None:
    sender = {"mail": send_mail, "wecom": send_wecom_robot, "dingtalk": send_dingtalk_robot,
              "wecom_app": send_wecom_app}.get(channel)
    if sender is None:
        raise ChannelError(f"未知的通知渠道 {channel}", permanent=True)
    if channel not in configured(config):
        raise ChannelError(f"大厅未配置{LABELS[channel]}", permanent=True)
    sender(config, out)


def _text(out: Outgoing) -> str:
    return "\n".join(part for part in (out.title, out.body, out.link) if part)


# -- mail --------------------------------------------------------------------------------------------

def send_mail(config, out: Outgoing) -> None:
    if not out.address:
        raise ChannelError("用户未填写邮箱地址，无法发送邮件", permanent=True)
    mail = EmailMessage()
    mail["Subject"] = out.title
    mail["From"] = config["SMTP_FROM"]
    mail["To"] = out.address
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{out.key}@quality-hall>"
    mail.set_content("\n".join(part for part in (out.body, out.link) if part) or out.title, charset="utf-8")
    try:
        with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=TIMEOUT) as smtp:
            if config.get("SMTP_TLS"):
                smtp.starttls()
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as err:
        raise ChannelError(f"邮件服务器拒收收件人 {out.address}：{_smtp_reason(err.recipients)}") from err
    except smtplib.SMTPResponseException as err:
        raise ChannelError(f"邮件服务器拒绝发送（{err.smtp_code}）：{_decode(err.smtp_error)}") from err
    except (smtplib.SMTPException, OSError) as err:
        raise ChannelError(f"无法连接邮件服务器 {config['SMTP_HOST']}:{config['SMTP_PORT']}：{err}") from err


def _decode(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _smtp_reason(recipients: dict) -> str:
    return "；".join(f"{code} {_decode(text)}" for code, text in recipients.values())


# -- robots ------------------------------------------------------------------------------------------

def _post(url: str, payload: dict, key: str, what: str) -> dict:
    try:
        response = requests.post(url, json=payload, timeout=TIMEOUT, headers={"X-Hall-Idempotency-Key": key})
    except requests.exceptions.InvalidURL as err:
        raise ChannelError(f"{what}地址无效：{url}", permanent=True) from err
    except requests.exceptions.MissingSchema as err:
        raise ChannelError(f"{what}地址无效：{url}", permanent=True) from err
    except requests.RequestException as err:
        raise ChannelError(f"无法连接{what}：{err.__class__.__name__}") from err
    if response.status_code >= 400:
        raise ChannelError(f"{what}返回 HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError as err:
        raise ChannelError(f"{what}的应答不是 JSON") from err
    if answer.get("errcode", 0) != 0:
        raise ChannelError(f"{what}拒绝消息：{answer.get('errcode')} {answer.get('errmsg', '')}")
    return answer


def send_wecom_robot(config, out: Outgoing) -> None:
    text = {"content": _text(out)}
    if out.address:
        text["mentioned_mobile_list"] = [out.address]
    _post(config["WECOM_WEBHOOK"], {"msgtype": "text", "text": text}, out.key, "企业微信群机器人")


def send_dingtalk_robot(config, out: Outgoing) -> None:
    url = config["DINGTALK_WEBHOOK"]
    secret = config.get("DINGTALK_SECRET")
    if secret:
        # DingTalk "加签": HMAC-SHA256 of "timestamp\nsecret", base64, URL-encoded.
        stamp = str(int(time.time() * 1000))
        digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(digest))
        url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={sign}"
    lines = [f"### {out.title}", "", out.body]
    if out.link:
        lines += ["", f"[查看详情]({out.link})"]
    if out.address:
        lines += ["", f"@{out.address}"]
    payload = {"msgtype": "markdown", "markdown": {"title": out.title, "text": "\n".join(lines)},
               "at": {"atMobiles": [out.address] if out.address else [], "isAtAll": False}}
    _post(url, payload, out.key, "钉钉群机器人")


# -- WeCom application messages ----------------------------------------------------------------------

_token_lock = threading.Lock()
_tokens: dict[str, tuple[str, float]] = {}


def _wecom_token(config) -> str:
    base = config["WECOM_API_BASE"].rstrip("/")
    cache_key = f"{base}|{config['WECOM_CORP_ID']}"
    with _token_lock:
        hit = _tokens.get(cache_key)
        if hit and hit[1] > time.monotonic():
            return hit[0]
    try:
        response = requests.get(f"{base}/cgi-bin/gettoken", timeout=TIMEOUT,
                                params={"corpid": config["WECOM_CORP_ID"], "corpsecret": config["WECOM_SECRET"]})
        answer = response.json()
    except (requests.RequestException, ValueError) as err:
        raise ChannelError(f"无法获取企业微信访问令牌：{err.__class__.__name__}") from err
    if answer.get("errcode", 0) != 0 or not answer.get("access_token"):
        raise ChannelError(f"企业微信拒绝发放访问令牌：{answer.get('errcode')} {answer.get('errmsg', '')}")
    with _token_lock:
        # Renewed a few minutes early so a send never uses a token that expires on the way.
        _tokens[cache_key] = (answer["access_token"], time.monotonic() + int(answer.get("expires_in", 7200)) - 300)
    return answer["access_token"]


def send_wecom_app(config, out: Outgoing) -> None:
    if not out.address:
        raise ChannelError("用户未填写企业微信账号，无法发送应用消息", permanent=True)
    token = _wecom_token(config)
    base = config["WECOM_API_BASE"].rstrip("/")
    payload = {"touser": out.address, "msgtype": "text", "agentid": int(config["WECOM_AGENT_ID"]),
               "text": {"content": _text(out)},
               # WeCom drops a repeat of the same content within the interval: our second line of defence.
               "enable_duplicate_check": 1, "duplicate_check_interval": 1800}
    _post(f"{base}/cgi-bin/message/send?access_token={urllib.parse.quote(token)}", payload, out.key,
          "企业微信应用消息接口")
