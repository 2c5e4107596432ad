"""Starting a service from the catalogue: one instance per start form, and an untouched application can be
discarded from its first step."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from hall.extensions import db
from hall.processes.models import ProcessInstance
from tests.web.leave_steps import open_approval, submit_leave
from tests.web.test_pages import sign_in


def _instances_of(username: str) -> list[tuple[int, str]]:
    from hall.accounts.models import User

    db.session.rollback()  # see what the server committed
    return db.session.execute(sa.select(ProcessInstance.id, ProcessInstance.state).join(
        User, User.id == ProcessInstance.starter_id).where(User.username == username)).all()


def test_second_post_of_one_start_form_opens_the_first_instance(demo, live_server, phone):
    """Posting the same 发起 form twice starts one instance; the second POST leads to the first one's task."""
    page = phone()
    sign_in(page, live_server, "t1002")
    page.goto(live_server + "/services")
    form = page.locator("form:has(button[aria-label='发起请假申请'])")
    fields = {name: form.locator(f"input[name={name}]").get_attribute("value") for name in ("_csrf", "start_token")}
    first = page.request.post(live_server + "/services/leave_request/start", form=fields, max_redirects=0)
    second = page.request.post(live_server + "/services/leave_request/start", form=fields, max_redirects=0)
    assert first.status == second.status == 302
    assert re.search(r"/tasks/\d+$", first.headers["location"])
    assert second.headers["location"] == first.headers["location"]
    assert len(_instances_of("t1002")) == 1


def test_each_start_form_starts_its_own_instance(demo, live_server, phone):
    """Two 发起 taps from freshly loaded catalogue pages start two applications (the token is per form)."""
    page = phone()
    sign_in(page, live_server, "t1002")
    for _ in range(2):
        page.goto(live_server + "/services")
        page.click("button[aria-label='发起请假申请']")
        expect(page.locator("h1")).to_have_text("填写请假单")
    assert len(_instances_of("t1002")) == 2


def test_start_form_with_a_malformed_token_is_refused(demo, live_server, phone):
    """A start form whose token is not one the page could have issued answers 400 and starts nothing."""
    page = phone()
    sign_in(page, live_server, "t1002")
    page.goto(live_server + "/services")
    csrf = page.locator("input[name=_csrf]").first.get_attribute("value")
    answer = page.request.post(live_server + "/services/leave_request/start",
                               form={"_csrf": csrf, "start_token": "x"}, max_redirects=0)
    assert answer.status == 400
    assert _instances_of("t1002") == []


def test_starter_discards_an_untouched_application_from_its_form(demo, live_server, phone):
    """放弃申请 on the starter's first, never-submitted form withdraws the application after a confirmation:
    it leaves 待办 and is no longer running."""
    page = phone()
    sign_in(page, live_server, "t1002")
    page.goto(live_server + "/services")
    page.click("button[aria-label='发起请假申请']")
    expect(page.locator("h1")).to_have_text("填写请假单")
    page.click("summary:has-text('放弃申请')")
    page.click("button:has-text('确认放弃')")
    expect(page.locator(".flash")).to_contain_text("申请已撤销")
    expect(page.locator("h1")).to_have_text("办事服务")
    assert [state for _, state in _instances_of("t1002")] == ["terminated"]
    page.goto(live_server + "/tasks")
    expect(page.locator(".list")).to_contain_text("暂无待办")


def test_no_discard_once_the_application_went_on(demo, live_server, phone):
    """The head's approval task offers no 放弃申请 (it is not the head's application)."""
    submit_leave(phone(), live_server, "家中有事。", leave_type="事假")
    head = phone()
    open_approval(head, live_server)
    expect(head.locator("h1")).to_have_text("部门负责人审批")
    expect(head.locator("summary:has-text('放弃申请')")).to_have_count(0)


def test_simultaneous_posts_of_one_start_form_start_one_instance(app, api):
    """Ten POSTs of the same start form released at once: one instance, and every answer leads to its task
    (never a 500)."""
    import threading

    from tests.conftest import bpmn_sequence

    with app.app_context():
        from hall.org.demo import load_demo_organisation
        from hall.processes import services

        load_demo_organisation()
        services.deploy({"race.bpmn": bpmn_sequence("race", 2)}, {})
        db.session.remove()
    api.login("t1001")
    cookie = api.client.get_cookie("session")
    form = {"_csrf": api.csrf, "start_token": "same-form-token-0123456789"}
    barrier, lock, answers = threading.Barrier(10), threading.Lock(), []

    def post():
        client = app.test_client()
        client.set_cookie("session", cookie.value)
        barrier.wait(timeout=60)
        answer = client.post("/services/race/start", data=form)
        with lock:
            answers.append((answer.status_code, answer.headers.get("Location")))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert {status for status, _ in answers} == {302}, answers
    assert len({location for _, location in answers}) == 1, answers
    with app.app_context():
        assert len(_instances_of("t1001")) == 1
        db.session.remove()


def test_no_discard_on_a_process_started_on_someones_behalf(app, ctx, deploy_bpmn, api):
    """A process outside the catalogue (started for a person, e.g. warning handling) offers no 放弃申请 on its
    first step; a catalogue one does."""
    from hall.accounts.models import User
    from hall.org.demo import load_demo_organisation
    from hall.processes import services
    from tests.conftest import bpmn_sequence

    load_demo_organisation()
    hidden = bpmn_sequence("on_behalf", 2).replace(
        b'isExecutable="true">', b'isExecutable="true"><bpmn:extensionElements><spiffworkflow:properties>'
        b'<spiffworkflow:property name="inCatalogue" value="false"/></spiffworkflow:properties>'
        b'</bpmn:extensionElements>')
    deploy_bpmn(hidden, {}, "on_behalf.bpmn")
    deploy_bpmn(bpmn_sequence("in_catalogue", 2), {}, "in_catalogue.bpmn")
    teacher = db.session.scalar(sa.select(User).where(User.username == "t1001"))
    first = {}
    for key in ("on_behalf", "in_catalogue"):
        instance = services.start_instance(key, teacher, check_startable=False)
        first[key] = next(t.id for t in services.instance_tasks(instance) if t.state == "ready")
    db.session.commit()
    api.login("t1001")
    assert "放弃申请" not in api.client.get(f"/tasks/{first['on_behalf']}").get_data(as_text=True)
    assert "放弃申请" in api.client.get(f"/tasks/{first['in_catalogue']}").get_data(as_text=True)


def test_start_tokens_older_than_a_day_are_forgotten(app, ctx, deploy_bpmn):
    """The periodic job drops start-form tokens older than a day and keeps the fresh ones, so the table stays
    small; a resend of a forgotten form just starts a new application."""
    from datetime import timedelta

    from hall.db_types import utcnow
    from hall.jobs import PERIODIC
    from hall.org.demo import load_demo_organisation
    from hall.processes import services
    from hall.processes.models import StartRequest
    from tests.conftest import bpmn_sequence

    load_demo_organisation()
    deploy_bpmn(bpmn_sequence("tokens", 1))
    from hall.accounts.models import User

    teacher = db.session.scalar(sa.select(User).where(User.username == "t1001"))
    services.start_instance_once("tokens", teacher, "old-form-token-0123456789")
    services.start_instance_once("tokens", teacher, "new-form-token-0123456789")
    db.session.execute(sa.update(StartRequest).where(StartRequest.token.startswith("old-"))
                       .values(created_at=utcnow() - timedelta(days=1, minutes=1)))
    db.session.commit()
    assert PERIODIC["forget-start-requests"][0] == "hall.forget_start_requests"
    assert services.forget_start_requests() == 1
    assert db.session.scalars(sa.select(StartRequest.token)).all() == ["new-form-token-0123456789"]
