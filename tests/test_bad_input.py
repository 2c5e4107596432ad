"""Bad input at the door: numbers the databases cannot hold, JSON nested without end, NUL characters. Each
gets a 4xx a person can read and changes nothing; before, each was a 500 on SQLite, PostgreSQL or both."""

from __future__ import annotations

import pytest

from tests import test_tasks_api as _tasks
from tests.conftest import Api
from tests.test_tasks_api import first_task, start, task_of

# The signed-in people and the two-step flow of the task tests, shared as fixtures.
people, solo = _tasks.people, _tasks.solo

HUGE = 10**30


@pytest.mark.parametrize("number", [2**31, 2**63, HUGE])
def test_ids_beyond_the_database_are_404(people, solo, number):
    teacher = people("t1001")
    for path in (f"tasks/{number}", f"process-instances/{number}", f"attachments/{number}", f"cycles/{number}",
                 f"subjects/{number}", f"warnings/{number}", f"reports/department/{number}.docx"):
        assert teacher.get(path).status_code == 404, path
    assert teacher.post(f"tasks/{number}/claim").status_code == 404
    assert teacher.post(f"tasks/{number}/complete", {"data": {}, "version": 1}).status_code == 404


def test_numbers_beyond_the_database_in_queries_and_bodies_are_422(people, solo):
    teacher = people("t1001")
    for query in (f"tasks?page={HUGE}", f"process-instances?page={HUGE}", f"process-instances?org_unit={HUGE}",
                  f"subjects?page={HUGE}", f"messages?page={2**40}"):
        response = teacher.get(query)
        assert response.status_code == 422, (query, response.get_json())
    response = teacher.post("process-instances", {"definition": solo, "data": {}, "org_unit": 2**40})
    assert response.status_code == 422 and "数值超出范围" in str(response.get_json()["errors"])
    assert teacher.get("tasks?view=mine").get_json()["items"] == []  # nothing was started


def test_json_nested_without_end_is_400(people, solo):
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    for depth in (65, 600, 100_000):
        body = '{"data": {"x": ' + "[" * depth + "]" * depth + '}, "version": ' + str(task["version"]) + "}"
        response = teacher.post(f"tasks/{task['id']}/complete", data=body, content_type="application/json")
        assert response.status_code == 400, depth
        assert "嵌套" in response.get_json()["message"]
        started = teacher.post("process-instances", data='{"definition": "solo", "data": {"x": '
                               + "[" * depth + "]" * depth + "}}", content_type="application/json")
        assert started.status_code == 400, depth
    assert task_of(teacher, task["id"])["state"] == "ready"
    deep_enough = "[" * 60 + "]" * 60  # nesting a form could plausibly need is kept
    body = '{"data": {"reason": "出差", "days": 1, "x": ' + deep_enough + '}, "version": ' + str(task["version"]) + "}"
    assert teacher.post(f"tasks/{task['id']}/complete", data=body, content_type="application/json").status_code == 200


def test_nul_characters_are_400_and_nothing_is_stored(people, solo):
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    assert teacher.post(f"tasks/{task['id']}/comments", {"body": "a\x00b"}).status_code == 400
    assert teacher.get(f"tasks/{task['id']}/comments").get_json() in ([], {"items": []})
    assert teacher.post(f"tasks/{task['id']}/complete", {"data": {"k\x00": "v"}, "version": task["version"]}) \
        .status_code == 400
    assert teacher.post("process-instances", {"definition": "solo\x00", "data": {}}).status_code == 400
    lone_surrogate = '{"data": {"reason": "\\ud800"}, "version": ' + str(task["version"]) + "}"
    assert teacher.post(f"tasks/{task['id']}/complete", data=lone_surrogate, content_type="application/json") \
        .status_code == 400
    for path in ("/api/v1/process-instances?definition=a%00b", "/api/v1/tasks?view=mine%00"):
        response = teacher.get(path)
        assert response.status_code == 400 and "空字符" in response.get_json()["message"]
    page = teacher.client.post("/login", data={"username": "t1001\x00", "password": "hall2026"})
    assert page.status_code == 400 and "空字符" in page.get_data(as_text=True)
    assert task_of(teacher, task["id"])["state"] == "ready"


def test_pages_take_numbers_beyond_the_database_as_not_given(people, solo, app):
    """A list page's `page`, `org_unit` or `parent` that is no number the databases hold is read as not
    given (the first page, no filter), as a value that is not a number at all always was."""
    teacher = people("t1001")
    for path in ("/tasks", "/mine", "/messages"):
        for page in (str(HUGE), str(2**31), "-5", "x"):
            assert teacher.client.get(path, query_string={"page": page}).status_code == 200, (path, page)
    admin = Api(app).login("admin")
    for path in ("/admin/users", "/quality/cycles", "/quality/portraits", "/quality/warnings"):
        for name in ("page", "org_unit", "parent"):
            response = admin.client.get(path, query_string={name: str(HUGE)})
            assert response.status_code == 200, (path, name, response.status_code)
