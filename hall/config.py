"""Settings read from HALL_* environment variables, with defaults that run the embedded hall."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default=None):
    return os.environ.get(f"HALL_{name}", default)


def _int(name: str, default: int) -> int:
    return int(_env(name, default))


class Config:
    """Defaults; every value can be overridden by an environment variable or the factory's mapping."""

    def __init__(self) -> None:
        instance = Path(_env("INSTANCE_PATH", ROOT / "instance"))
        self.INSTANCE_PATH = str(instance)
        self.SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{instance / 'hall.db'}")
        # A random key in the embedded default keeps sessions working on one machine; production sets
        # HALL_SECRET_KEY so that several app servers share sessions.
        self.SECRET_KEY = _env("SECRET_KEY") or _stable_dev_secret(instance)
        self.BROKER_URL = _env("BROKER_URL")  # None: Celery tasks run in-process
        self.RESULT_BACKEND = _env("RESULT_BACKEND")
        self.ATTACHMENT_DIR = _env("ATTACHMENT_DIR", str(instance / "attachments"))
        self.MAX_ATTACHMENT_BYTES = _int("MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
        # Request bodies beyond this are refused with 413 before they are read.
        self.MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 20 * 1024 * 1024)
        self.MAX_BPMN_BYTES = _int("MAX_BPMN_BYTES", 2 * 1024 * 1024)
        self.WORKFLOWS_DIR = _env("WORKFLOWS_DIR", str(ROOT / "workflows"))
        self.FORMS_DIR = _env("FORMS_DIR", str(ROOT / "forms"))
        self.TIMER_POLL_SECONDS = float(_env("TIMER_POLL_SECONDS", 5))
        self.SCRIPT_STEP_BUDGET = _int("SCRIPT_STEP_BUDGET", 200_000)
        self.SCRIPT_TIME_BUDGET = float(_env("SCRIPT_TIME_BUDGET", 1.0))
        # How long an app server process may reuse a signed-in user's row (hall/accounts/cache.py); 0: never.
        self.USER_CACHE_SECONDS = float(_env("USER_CACHE_SECONDS", 5))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _env("SESSION_COOKIE_SECURE", "0") == "1"
        self.BABEL_DEFAULT_LOCALE = _env("LOCALE", "zh")
        # Reverse proxies in front of the app servers whose X-Forwarded-For/-Proto/-Host headers are believed
        # (werkzeug's ProxyFix): 1 behind one nginx. 0 (the default) believes none, so a client cannot forge
        # its address; behind a proxy that leaves every request coming from the proxy's address.
        self.PROXY_COUNT = _int("PROXY_COUNT", 0)
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}
        # flask-smorest: the OpenAPI document and a browsable UI.
        self.API_TITLE = "Quality Hall API"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api/v1"
        self.OPENAPI_JSON_PATH = "openapi.json"
        # Browsable API documentation, served from the npm package (no CDN).
        self.OPENAPI_SWAGGER_UI_PATH = "/docs"
        self.OPENAPI_SWAGGER_UI_URL = "/static/vendor/swagger-ui/"
        self.JSON_SORT_KEYS = False


def _stable_dev_secret(instance: Path) -> str:
    """A per-installation secret kept under instance/ so a restart keeps people signed in."""
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        path.write_text(key)
        return key
