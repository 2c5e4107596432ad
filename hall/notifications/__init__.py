"""Deadlines, reminders, escalation and the message centre with its outside channels (mail, WeCom, DingTalk).

`init_app` reads the HALL_* settings of this package (the factory's mapping wins over the environment),
registers the API blueprint, the message-centre page and the Celery jobs.
"""

from __future__ import annotations

import os

SETTINGS = {
    # name: default (read from HALL_<name>)
    "SMTP_HOST": None,
    "SMTP_PORT": 25,
    "SMTP_USER": None,
    "SMTP_PASSWORD": None,
    "SMTP_FROM": "quality-hall@localhost",
    "SMTP_TLS": False,
    "WECOM_WEBHOOK": None,
    "DINGTALK_WEBHOOK": None,
    "DINGTALK_SECRET": None,
    "WECOM_CORP_ID": None,
    "WECOM_SECRET": None,
    "WECOM_AGENT_ID": None,
    "WECOM_API_BASE": "https://qyapi.weixin.qq.com",
    # The address of the hall as people reach it, for links in outside messages.
    "PUBLIC_URL": "",
    # Deadlines: reminders this long before the due time, escalation to this role after it.
    "REMIND_BEFORE_HOURS": 24.0,
    "ESCALATE_TO": "dept_head",
    # Deliveries: back-off base and cap (seconds), attempts before giving up, how long a claim holds.
    "NOTIFY_RETRY_SECONDS": 30.0,
    "NOTIFY_RETRY_MAX_SECONDS": 3600.0,
    "NOTIFY_MAX_ATTEMPTS": 10,
    "NOTIFY_CLAIM_SECONDS": 120.0,
    # The outbox reads events at least this old, so a transaction still committing is not passed by.
    "NOTIFY_SETTLE_SECONDS": 2.0,
    # Local hour (Asia/Shanghai) after which the daily digest goes out.
    "DIGEST_HOUR": 8,
    "TIMEZONE": "Asia/Shanghai",
}


def _coerce(default, raw: str):
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def init_app(app) -> None:
    for name, default in SETTINGS.items():
        if name in app.config:
            continue
        raw = os.environ.get(f"HALL_{name}")
        app.config[name] = default if raw is None or raw == "" else _coerce(default, raw)

    from hall.extensions import api
    from hall.notifications import tasks as _jobs  # noqa: F401 - registers the Celery tasks and periodic jobs
    from hall.notifications.api import blp
    from hall.web.message_views import bp

    api.register_blueprint(blp)
    app.register_blueprint(bp)
