"""Sign-on with the college's unified identity service (统一身份认证): CAS 2.0/3.0 and OpenID Connect.

Providers are configured by HALL_* settings (see README "Sign-on (CAS / OIDC)"); a value in the app's
config (without the HALL_ prefix) wins over the environment variable, so tests and the factory can set them.
"""

from __future__ import annotations

import json
import os

from flask import current_app


def setting(name: str, default=None):
    """The value of setting *name*: app.config[name], else the environment's HALL_<name>, else *default*."""
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(f"HALL_{name}")
    return default if value in (None, "") else value


def json_setting(name: str, default):
    """A setting holding JSON (a mapping given as a string in the environment, or a dict in config)."""
    value = setting(name)
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


def cas_enabled() -> bool:
    return bool(setting("CAS_URL"))


def oidc_enabled() -> bool:
    return bool(setting("OIDC_ISSUER") and setting("OIDC_CLIENT_ID"))


class SignOnRefused(Exception):
    """An identity assertion (ticket, code, token) that must not sign anyone in; `reason` is for the log."""

    def __init__(self, reason: str, message: str = "统一身份认证失败，请重新登录"):
        super().__init__(reason)
        self.reason = reason
        self.message = message
