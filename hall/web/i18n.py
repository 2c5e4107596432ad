"""Languages of the pages (flask-babel): Chinese by default, English on request.

The locale comes from `?lang=` (remembered in a cookie, not in the session: signing in starts a brand-new
session and would forget the choice), else Chinese. The browser's Accept-Language is not followed: the
hall is Chinese first, and many campus computers run English-language browsers. Catalogs live in
hall/translations (messages.po extracted with `pybabel extract -F babel.cfg`, compiled to .mo by
scripts/setup). The JSON API stays Chinese.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_babel import Babel, get_locale

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
COOKIE = "hall_lang"
COOKIE_AGE = 365 * 24 * 3600

babel = Babel()


def select_locale() -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        g.hall_lang_asked = asked
        return asked
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return remembered
    return DEFAULT


def init_app(app: Flask) -> None:
    babel.init_app(app, default_locale=DEFAULT, locale_selector=select_locale,
                   default_translation_directories=str(app.root_path + "/translations"))

    @app.after_request
    def _remember_language(response):
        if request.path.startswith("/api/"):  # the JSON API stays Chinese: nothing to remember
            return response
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
            response.set_cookie(COOKIE, asked, max_age=COOKIE_AGE, samesite="Lax", httponly=True,
                                secure=request.is_secure)
        return response

    @app.context_processor
    def _language_helpers():
        return {"current_language": lambda: str(get_locale() or DEFAULT).split("_")[0],
                "languages": LANGUAGES}


def N_(text: str) -> str:
    """Marks a string for extraction only (pybabel -k N_); templates translate it with _(value)."""
    return text


# Labels that templates receive as values (step, level, state names) and translate with _(value).
DYNAMIC_LABELS = (
    N_("目标"), N_("标准"), N_("设计"), N_("组织"), N_("实施"), N_("诊断"), N_("激励"), N_("学习"), N_("创新"),
    N_("改进"), N_("已完成"), N_("出错"), N_("已终止"), N_("已挂起"),
    N_("学院"), N_("专业"), N_("课程"), N_("教师"), N_("学生"),
    N_("达标"), N_("黄色预警"), N_("红色预警"), N_("未测"),
    N_("待处置"), N_("处置中"), N_("已处置"), N_("已关闭"),
    N_("进行中"), N_("已办结"), N_("出错"), N_("待办理"), N_("等待加签"), N_("已取消"), N_("已撤销"),
    N_("越高越好"), N_("越低越好"), N_("是/否"),
)
