"""Languages: Chinese by default (whatever the browser's Accept-Language), English through ?lang=en (remembered)."""

from __future__ import annotations

import re

from flask_babel import refresh
from playwright.sync_api import expect

from hall.web.i18n import LANGUAGES
from tests.web.test_pages import hall, sign_in  # noqa: F401 - the fixture is reused


def test_pages_are_chinese_by_default(app, hall):  # noqa: F811
    """With no choice and no Accept-Language the sign-in page is Chinese."""
    body = app.test_client().get("/services", follow_redirects=True).get_data(as_text=True)
    assert "English" in body  # the switch offers the other language
    assert 'lang="zh-CN"' in body


def test_english_browser_still_gets_chinese_until_english_is_chosen(api, hall):  # noqa: F811
    """An English-language browser sees Chinese pages (Chinese first); ?lang=en switches them."""
    api.login("t1001")
    body = api.client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "我要办事" in body and "Start a service" not in body
    refresh()  # the test's shared app context caches the locale between requests; a server's does not
    body = api.client.get("/?lang=en", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "Start a service" in body and "我要办事" not in body


def test_language_switch_shows_english_and_is_remembered(hall, live_server, phone):  # noqa: F811
    """?lang=en turns a Chinese phone's pages English, and the choice holds on the next pages."""
    page = phone()
    sign_in(page, live_server, "t1001")
    page.click("header a.lang")
    expect(page.locator("nav.tabs")).to_contain_text("Home")
    expect(page.locator("nav.tabs")).to_contain_text("Services")
    expect(page.locator("h1.greet")).to_contain_text("Hello")
    page.click("nav.tabs >> text=To do")
    expect(page.locator("h1")).to_contain_text("To do")
    page.click("header a.lang")
    expect(page.locator("nav.tabs")).to_contain_text("首页")


def test_english_dashboard_labels(app, api, hall):  # noqa: F811
    """The quality pages are translated too (?lang=en)."""
    api.login("q4001")
    body = api.client.get("/quality/cycles?lang=en").get_data(as_text=True)
    assert "No cycle has been opened yet" in body and "Portraits" in body


def _visible_cjk(body: str, data: list[str]) -> list[str]:
    """Runs of Chinese text (ideographs, Chinese punctuation; not the ＋/－ zoom signs) left in a page's
    markup once the given data values are taken out."""
    for value in sorted(data, key=len, reverse=True):
        body = body.replace(value, "")
    return re.findall(r"[\u3000-\u303f\u4e00-\u9fff（），：；！？]+", body)


def test_sign_in_task_and_instance_pages_are_all_english(app, api, hall, deploy_bpmn):  # noqa: F811
    """With ?lang=en the sign-in, task and instance pages hold no Chinese but their data (names, titles)."""
    from hall.accounts.models import User
    from hall.extensions import db
    from hall.processes import services as processes
    from tests.conftest import bpmn_sequence

    deploy_bpmn(bpmn_sequence("one_step", 1), {}, "one_step.bpmn")
    teacher = db.session.scalar(db.select(User).where(User.username == "t1001"))
    instance = processes.start_instance("one_step", teacher)
    task = next(t for t in processes.instance_tasks(instance) if t.state == "ready")
    data = [teacher.name, instance.title, task.name, instance.definition.name, LANGUAGES["zh"]]  # + the switch
    db.session.commit()

    body = app.test_client().get("/login?lang=en").get_data(as_text=True)
    assert _visible_cjk(body, data) == []
    assert "Staff / student number" in body and "Password" in body and "Sign in" in body
    api.login("t1001")
    refresh()  # the test's shared app context caches the locale between requests; a server's does not
    body = api.client.get(f"/tasks/{task.id}?lang=en").get_data(as_text=True)
    assert _visible_cjk(body, data) == []
    assert "Process diagram" in body and "Write a comment" in body and "Transfer to (staff number)" in body
    body = api.client.get(f"/instances/{instance.id}?lang=en").get_data(as_text=True)
    assert _visible_cjk(body, data) == []
    assert "Progress" in body and "Current step: " in body and "Started" in body
