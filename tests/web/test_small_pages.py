"""Small things of the pages: the sign-in form keeps the username after a refusal, the hall has an icon, a
list page past its end goes to its last page, and 待办 rows tell same-titled applications apart."""

from __future__ import annotations

import re

from tests.web.test_pages import hall  # noqa: F401 - the fixture is reused


def test_failed_sign_in_keeps_the_username(app, hall):  # noqa: F811
    """A wrong password answers with the username still in its field (and the password empty)."""
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["_csrf"]
    answer = client.post("/login", data={"_csrf": csrf, "username": "t1001", "password": "wrong"})
    body = answer.get_data(as_text=True)
    assert answer.status_code in (400, 401, 403)
    assert re.search(r'<input name="username"[^>]*value="t1001"', body)
    assert 'value="wrong"' not in body


def test_favicon_is_served_and_linked(app, hall):  # noqa: F811
    """/favicon.ico leads to the icon in static, and every page links it."""
    client = app.test_client()
    answer = client.get("/favicon.ico", follow_redirects=True)
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    assert b"<svg" in answer.data
    assert 'rel="icon"' in client.get("/login").get_data(as_text=True)


def test_task_list_past_its_end_goes_to_the_last_page(api, hall):  # noqa: F811
    """/tasks?page=99999 with one open task goes to page 1, which lists it (no 「共 1 项」 over 「暂无待办」)."""
    api.login("t1001")
    api.post("process-instances", {"definition": "course_swap"})
    answer = api.client.get("/tasks?page=99999")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/tasks?view=open&page=1")
    body = api.client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "共 1 项" in body and "暂无待办" not in body


def test_mine_past_its_end_goes_to_the_last_page(api, hall):  # noqa: F811
    """/mine?page=99999 goes to the last page of 我发起的."""
    api.login("t1001")
    api.post("process-instances", {"definition": "course_swap"})
    answer = api.client.get("/mine?page=99999")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/mine?page=1")


def test_task_rows_carry_the_application_number(api, hall):  # noqa: F811
    """Two applications with the same title are told apart in 待办 by their numbers."""
    api.login("t1001")
    first = api.post("process-instances", {"definition": "course_swap"}).get_json()["id"]
    second = api.post("process-instances", {"definition": "course_swap"}).get_json()["id"]
    body = api.client.get("/tasks").get_data(as_text=True)
    assert f"编号 {first}" in body and f"编号 {second}" in body
