"""Quality Hall (诊改办事大厅): the application factory."""

from __future__ import annotations

from flask import Flask, jsonify, redirect, request, url_for
from sqlalchemy import event
from sqlalchemy.engine import Engine as SAEngine
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from hall import fields, jsontext
from hall.config import Config
from hall.errors import HallError
from hall.extensions import api, db, login_manager, migrate


def create_app(config: dict | None = None) -> Flask:
    """The only factory: settings from HALL_* variables, overridden by *config*."""
    app = Flask(__name__, instance_relative_config=False, static_folder="web/static",
                template_folder="web/templates")
    app.url_map.converters["int"] = _DatabaseInt  # before any route is added
    app.config.from_object(Config())
    if config:
        app.config.update(config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    # JSON columns are read through hall/jsontext.py (the same values, faster); so are request bodies, and
    # answers are written through it.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("json_deserializer", jsontext.loads)
    app.json = jsontext.JSONProvider(app)

    db.init_app(app)
    from hall import transactions

    transactions.init_app(app)  # after db.init_app: its teardown must run before Flask-SQLAlchemy's
    migrate.init_app(app, db, directory=str(_root() / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    from hall.accounts import cache as user_cache

    user_cache.init_app(app)
    api.init_app(app)

    from hall import access, security

    security.init_app(app)
    security.trust_proxies(app)
    access.init_app(app)  # role gates of hall/access.py, after the token and CSRF checks

    from hall import models  # noqa: F401 - registers every model with the metadata
    from hall.accounts.api import blp as auth_blp
    from hall.accounts.tokens_api import blp as tokens_blp
    from hall.accounts.users_api import blp as users_blp
    from hall.audit.api import blp as audit_blp
    from hall.processes.api import blp as processes_blp
    from hall.quality.api import blp as quality_blp
    from hall.quality.cycles_api import blp as cycles_blp
    from hall.quality.reports_api import blp as reports_blp
    from hall.tasks.api import blp as tasks_blp

    for blueprint in (auth_blp, processes_blp, tasks_blp, quality_blp, cycles_blp, reports_blp, tokens_blp,
                      audit_blp, users_blp):
        api.register_blueprint(blueprint)

    from hall import notifications

    notifications.init_app(app)  # messages API and page, notification jobs

    from hall.jobs import init_celery
    from hall.processes import tasks as _process_jobs  # noqa: F401 - registers periodic jobs

    init_celery(app)
    _register_web(app)
    _register_errors(app)
    _register_cli(app)
    return app


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


@event.listens_for(SAEngine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets readers go on while one writer commits; foreign keys are off by default in SQLite.
    if dbapi_connection.__class__.__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class _DatabaseInt(IntegerConverter):
    """`<int:…>` in routes: an id beyond the databases' integer columns (32 bits on PostgreSQL) names nothing
    (404), instead of reaching the database, which refuses to compare it (a 500)."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=fields.LARGEST, signed=False):  # noqa: A002
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HallError)
    def hall_error(err: HallError):
        db.session.rollback()
        if _wants_json():
            return jsonify(err.to_dict()), err.code
        from hall.web.views import render_error

        return render_error(err.code, err.message, err.errors)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        db.session.rollback()
        messages = {400: "请求格式不正确", 401: "请先登录", 403: "没有权限", 404: "页面或资源不存在",
                    405: "不支持此请求方法", 413: "上传内容过大", 422: "提交的数据有误", 429: "操作过于频繁"}
        message = messages.get(err.code, err.description)
        errors = None
        data = getattr(err, "data", None)
        if data and "messages" in data:  # webargs/marshmallow field errors
            # A location holds field -> messages, or a bare list (a body that is not JSON at all).
            errors = {k: v for loc, msgs in data["messages"].items()
                      for k, v in (msgs.items() if isinstance(msgs, dict) else [(loc, msgs)])} \
                if isinstance(data["messages"], dict) else data["messages"]
        if err.code == 400 and not errors:
            message = "请求格式不正确（JSON 无效或缺少内容）"
        if _wants_json():
            body = {"code": err.code, "status": err.name, "message": message}
            if errors:
                body["errors"] = errors
            return jsonify(body), err.code
        from hall.web.views import HTTP_MESSAGES, render_error

        if message == messages.get(err.code) and err.code in HTTP_MESSAGES:
            message = str(HTTP_MESSAGES[err.code])  # the same words, in the page's language
        return render_error(err.code, message, errors)

    @login_manager.unauthorized_handler
    def unauthorized():
        if _wants_json():
            return jsonify({"code": 401, "status": "Unauthorized", "message": "请先登录"}), 401
        return redirect(url_for("web.login", next=request.full_path if request.query_string else request.path))

    @login_manager.user_loader
    def load_user(user_id: str):
        from hall.accounts import cache

        return cache.load_user(int(user_id))


def _register_web(app: Flask) -> None:
    from hall.accounts.sso import bp as sso_bp
    from hall.web.admin_views import bp as admin_bp
    from hall.web.views import bp as web_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(sso_bp)
    app.register_blueprint(admin_bp)

    from hall.web import assets, i18n
    from hall.web.quality_views import bp as quality_web_bp

    app.register_blueprint(quality_web_bp)
    assets.init_app(app)
    i18n.init_app(app)


def _register_cli(app: Flask) -> None:
    from hall.cli import register

    register(app)
