"""Human tasks through the API: the inbox, claiming, completing, transfer, signers, drafts, comments, files."""

from __future__ import annotations

import io

import pytest

from tests.conftest import Api, bpmn_sequence

FORM_PROPS = (
    "<bpmn:extensionElements><spiffworkflow:properties>"
    '<spiffworkflow:property name="formJsonSchemaFilename" value="reason.json"/>'
    "</spiffworkflow:properties></bpmn:extensionElements>"
)
REASON_FORM = {
    "type": "object",
    "required": ["reason", "days"],
    "properties": {
        "reason": {"type": "string", "title": "事由", "minLength": 2},
        "days": {"type": "integer", "title": "天数", "minimum": 1},
    },
}


@pytest.fixture
def people(demo, app):
    """One signed-in client per demo person, created on first use: people("t1001")."""
    clients = {}

    def get(username: str):
        if username not in clients:
            clients[username] = Api(app)
            clients[username].login(username)
        return clients[username]

    return get


@pytest.fixture
def solo(deploy_bpmn):
    """Two steps, both handled by the starter (no lane)."""
    deploy_bpmn(bpmn_sequence("solo", 2))
    return "solo"


@pytest.fixture
def headed(deploy_bpmn):
    """Two steps in the dept_head lane: the head of the starter's department handles them."""
    deploy_bpmn(bpmn_sequence("headed", 2, lane="dept_head"))
    return "headed"


def start(client, key: str, data: dict | None = None) -> dict:
    response = client.post("process-instances", {"definition": key, "data": data or {}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def inbox(client, view: str = "mine", **params) -> dict:
    response = client.get("tasks", query_string={"view": view, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def first_task(client, view: str = "mine") -> dict:
    items = inbox(client, view)["items"]
    assert items, f"{view} inbox is empty"
    return client.get(f"tasks/{items[0]['id']}").get_json()


def task_of(client, task_id: int) -> dict:
    response = client.get(f"tasks/{task_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def complete(client, task: dict, data: dict | None = None, version: int | None = None):
    return client.post(
        f"tasks/{task['id']}/complete", {"data": data or {}, "version": task["version"] if version is None else version}
    )


# -- inbox -------------------------------------------------------------------------------------------


def test_inbox_mine_pages_with_total(people, solo):
    """Three waiting tasks: page_size=2 gives two then one item, with total 3 on both pages."""
    teacher = people("t1001")
    for _ in range(3):
        start(teacher, solo)
    first, second = inbox(teacher, page_size=2), inbox(teacher, page=2, page_size=2)
    assert (first["total"], len(first["items"])) == (3, 2)
    assert (second["total"], len(second["items"])) == (3, 1)
    assert not {t["id"] for t in first["items"]} & {t["id"] for t in second["items"]}


def test_completed_view_lists_what_i_submitted(people, solo):
    """After one submit the task leaves mine/open and appears under completed."""
    teacher = people("t1001")
    start(teacher, solo)
    start(teacher, solo)
    task = first_task(teacher)
    assert complete(teacher, task).status_code == 200
    done = inbox(teacher, "completed")
    assert done["total"] == 1 and done["items"][0]["id"] == task["id"]
    assert inbox(teacher, "mine")["total"] == 2  # the other instance's t1 and this one's t2
    assert task["id"] not in {t["id"] for t in inbox(teacher, "open")["items"]}


def test_role_lane_is_offered_to_head_of_starters_department_only(people, headed):
    """A dept_head task started by t1001 is a candidate of h2001 (xxgc) and invisible to h2002 (jdgc)."""
    start(people("t1001"), headed)
    assert inbox(people("h2001"), "candidate")["total"] == 1
    assert inbox(people("h2001"), "open")["total"] == 1
    assert inbox(people("h2002"), "candidate")["total"] == 0
    assert inbox(people("t1001"), "open")["total"] == 0


def test_claim_moves_task_to_mine_and_release_offers_it_again(people, headed):
    """Claim: candidate -> mine; release: mine -> candidate."""
    start(people("t1001"), headed)
    head = people("h2001")
    task = first_task(head, "candidate")
    claimed = head.post(f"tasks/{task['id']}/claim")
    assert claimed.status_code == 200 and claimed.get_json()["assignee"] == "h2001"
    assert inbox(head, "mine")["total"] == 1 and inbox(head, "candidate")["total"] == 0
    released = head.post(f"tasks/{task['id']}/release")
    assert released.status_code == 200 and released.get_json()["assignee"] is None
    assert inbox(head, "mine")["total"] == 0 and inbox(head, "candidate")["total"] == 1


def test_claim_by_non_candidate_who_sees_instance_is_forbidden(people, headed):
    """The starter sees the instance but is no candidate of the head's task: claiming is 403."""
    start(people("t1001"), headed)
    task = first_task(people("h2001"), "candidate")
    response = people("t1001").post(f"tasks/{task['id']}/claim")
    assert response.status_code == 403, response.get_json()
    assert task_of(people("h2001"), task["id"])["assignee"] is None


def test_claim_by_unrelated_user_is_not_found(people, headed):
    """A head of another department cannot even see the task: claiming is 404."""
    start(people("t1001"), headed)
    task = first_task(people("h2001"), "candidate")
    assert people("h2002").post(f"tasks/{task['id']}/claim").status_code == 404
    assert task_of(people("h2001"), task["id"])["assignee"] is None


def test_complete_by_non_assignee_is_refused_and_changes_nothing(people, headed):
    """After h2001 claims, the starter's submit is 403, an outsider's 404; the task stays open, same version."""
    start(people("t1001"), headed)
    head = people("h2001")
    task = first_task(head, "candidate")
    head.post(f"tasks/{task['id']}/claim")
    task = task_of(head, task["id"])
    assert complete(people("t1001"), task).status_code == 403
    assert complete(people("h2002"), task).status_code == 404
    after = task_of(head, task["id"])
    assert (after["state"], after["version"], after["assignee"]) == ("ready", task["version"], "h2001")


# -- completing: bad submits -------------------------------------------------------------------------


def test_complete_with_stale_version_is_conflict(people, solo):
    """A submit carrying an old version is 409; task and instance stay as they were."""
    teacher = people("t1001")
    instance = start(teacher, solo)
    task = first_task(teacher)
    response = complete(teacher, task, version=task["version"] - 1)
    assert response.status_code == 409, response.get_json()
    assert task_of(teacher, task["id"])["state"] == "ready"
    assert teacher.get(f"process-instances/{instance['id']}").get_json()["current_elements"] == ["t1"]


def test_second_submit_of_same_task_is_conflict(people, solo):
    """The first submit completes the task; the same submit again is 409 and adds no history."""
    teacher = people("t1001")
    instance = start(teacher, solo)
    task = first_task(teacher)
    assert complete(teacher, task, {"n": 1}).status_code == 200
    history = teacher.get(f"process-instances/{instance['id']}").get_json()["history"]
    again = complete(teacher, task, {"n": 2})
    assert again.status_code == 409, again.get_json()
    assert teacher.get(f"process-instances/{instance['id']}").get_json()["history"] == history


def test_form_validation_failure_is_422_with_field_errors(people, deploy_bpmn):
    """Data failing the task's JSON Schema: 422 naming the fields, and the task is still open."""
    deploy_bpmn(bpmn_sequence("formed", 1, extra_props=FORM_PROPS), {"reason.json": REASON_FORM})
    teacher = people("t1001")
    start(teacher, "formed")
    task = first_task(teacher)
    response = complete(teacher, task, {"reason": "x", "days": 0})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == 422 and set(body["errors"]) == {"reason", "days"}
    after = task_of(teacher, task["id"])
    assert (after["state"], after["version"]) == ("ready", task["version"])
    assert complete(teacher, after, {"reason": "出差", "days": 2}).status_code == 200


def test_malformed_json_body_is_400_with_uniform_error(people, solo):
    """A body that is not JSON gets 400 with {code, status, message} and the task stays open."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    response = teacher.post(f"tasks/{task['id']}/complete", data="{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == 400 and body["status"] == "Bad Request" and body["message"]
    assert task_of(teacher, task["id"])["state"] == "ready"


def test_nan_in_a_body_is_400_and_nothing_is_stored(people, solo):
    """NaN and Infinity are not JSON: Python's json module would take them, and the value would then be
    refused by PostgreSQL or stored as null. The submit is refused in words, the task stays open."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    for value in ("NaN", "Infinity", "-Infinity"):
        body = '{"data": {"reason": "出差", "days": ' + value + '}, "version": ' + str(task["version"]) + "}"
        response = teacher.post(f"tasks/{task['id']}/complete", data=body, content_type="application/json")
        assert response.status_code == 400, value
        assert response.get_json()["message"].startswith("请求体不是有效的 JSON")
    after = task_of(teacher, task["id"])
    assert (after["state"], after["version"]) == ("ready", task["version"])


def test_big_integers_in_task_data_are_kept_exactly(people, solo):
    """An integer beyond 64 bits in submitted data comes back exactly (not as a float) from the history."""
    teacher = people("t1001")
    instance = start(teacher, solo)
    task = first_task(teacher)
    big = 123456789012345678901234567890
    body = '{"data": {"reason": "出差", "days": 2, "ref": ' + str(big) + '}, "version": ' + str(task["version"]) + "}"
    response = teacher.post(f"tasks/{task['id']}/complete", data=body, content_type="application/json")
    assert response.status_code == 200, response.get_json()
    history = teacher.get(f"process-instances/{instance['id']}").get_json()["history"]
    assert any((entry.get("data") or {}).get("ref") == big for entry in history)


def test_unknown_task_is_404(people, solo):
    """Reading or completing a task id that does not exist is 404 with the uniform body."""
    teacher = people("t1001")
    assert teacher.get("tasks/999999").status_code == 404
    response = teacher.post("tasks/999999/complete", {"data": {}, "version": 1})
    assert response.status_code == 404 and response.get_json()["code"] == 404


# -- transfer and signers ----------------------------------------------------------------------------


def test_transfer_moves_task_to_the_other_persons_inbox(people, solo):
    """转办 to h2001: the task is in h2001's mine and no longer in t1001's."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    response = teacher.post(f"tasks/{task['id']}/transfer", {"username": "h2001", "comment": "请代办"})
    assert response.status_code == 200 and response.get_json()["assignee"] == "h2001"
    assert [t["id"] for t in inbox(people("h2001"))["items"]] == [task["id"]]
    assert inbox(teacher)["total"] == 0


def test_transfer_to_unknown_user_is_422(people, solo):
    """Transfer to a username that does not exist is 422 on username; the task stays with t1001."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    response = teacher.post(f"tasks/{task['id']}/transfer", {"username": "nobody"})
    assert response.status_code == 422 and "username" in response.get_json()["errors"]
    assert task_of(teacher, task["id"])["assignee"] == "t1001"


def test_transfer_to_a_student_is_422_and_the_student_gets_nothing(people, solo):
    """转办 to student 20240101 is 422 naming why; the task stays with t1001 and the student's inbox is empty."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    response = teacher.post(f"tasks/{task['id']}/transfer", {"username": "20240101"})
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert "不是教职工" in body["message"] and "不是教职工" in body["errors"]["username"][0]
    assert task_of(teacher, task["id"])["assignee"] == "t1001"
    assert inbox(people("20240101"))["total"] == 0


def test_transfer_to_a_deactivated_user_is_422_saying_so(people, solo, app):
    """转办 to a deactivated account is 422 with 「已停用」; the task does not move."""
    from hall.accounts import services as accounts

    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    accounts.set_user_active(accounts.get_user("t1002").id, False)
    response = teacher.post(f"tasks/{task['id']}/transfer", {"username": "t1002"})
    assert response.status_code == 422 and "已停用" in response.get_json()["message"]
    assert task_of(teacher, task["id"])["assignee"] == "t1001"


def test_add_signer_student_or_self_is_422_and_task_stays_ready(people, solo):
    """加签 a student or oneself is 422 on username; no sign task is made and the task stays ready."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    for username, says in (("20240101", "不是教职工"), ("t1001", "不能给自己加签")):
        response = teacher.post(f"tasks/{task['id']}/add-signer", {"username": username})
        assert response.status_code == 422 and says in response.get_json()["errors"]["username"][0]
    assert task_of(teacher, task["id"])["state"] == "ready"
    assert inbox(people("20240101"))["total"] == 0


def test_delegates_offer_only_active_staff_other_than_oneself(people, solo):
    """A task's people picker lists active staff matching q, never students nor the actor; outsiders are refused."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    found = teacher.get(f"tasks/{task['id']}/delegates", query_string={"q": "h200"}).get_json()
    assert {"h2001", "h2002"} <= {p["username"] for p in found}
    assert teacher.get(f"tasks/{task['id']}/delegates", query_string={"q": "林小雨"}).get_json() == []
    assert teacher.get(f"tasks/{task['id']}/delegates", query_string={"q": "t1001"}).get_json() == []
    assert people("20240101").get(f"tasks/{task['id']}/delegates").status_code in (403, 404)


def test_added_signer_blocks_the_task_until_signed(people, solo):
    """加签: the task is blocked and cannot be submitted (409) until the signer approves; then it can."""
    teacher, head = people("t1001"), people("h2001")
    start(teacher, solo)
    task = first_task(teacher)
    added = teacher.post(f"tasks/{task['id']}/add-signer", {"username": "h2001"})
    assert added.status_code == 201, added.get_json()
    sign = added.get_json()
    assert sign["kind"] == "sign" and sign["parent_task_id"] == task["id"]
    blocked = task_of(teacher, task["id"])
    assert blocked["state"] == "blocked"
    assert complete(teacher, blocked).status_code == 409
    assert [t["id"] for t in inbox(head)["items"]] == [sign["id"]]
    sign = task_of(head, sign["id"])
    assert complete(head, sign, {"approved": True, "opinion": "同意"}).status_code == 200
    ready = task_of(teacher, task["id"])
    assert ready["state"] == "ready"
    assert complete(teacher, ready).status_code == 200


# -- drafts, comments, attachments -------------------------------------------------------------------


def test_saved_draft_is_returned_with_the_task(people, solo):
    """PUT draft, then GET the task shows the draft."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    assert teacher.put(f"tasks/{task['id']}/draft", {"data": {"reason": "未写完"}}).status_code == 200
    assert task_of(teacher, task["id"])["draft"] == {"reason": "未写完"}


def test_comments_are_added_and_listed_in_order(people, solo):
    """Two comments come back in the order written, with their authors."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    for body in ("第一条", "第二条"):
        assert teacher.post(f"tasks/{task['id']}/comments", {"body": body}).status_code == 201
    listed = teacher.get(f"tasks/{task['id']}/comments").get_json()
    assert [(c["author"], c["body"]) for c in listed] == [("t1001", "第一条"), ("t1001", "第二条")]


def _upload(client, task_id: int, name: str, content: bytes):
    return client.post(
        f"tasks/{task_id}/attachments", data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data"
    )


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_pdf_attachment_downloads_for_participant_not_for_outsider(people, headed):
    """A PDF uploaded by the head comes back byte for byte to the starter; an outsider gets 404."""
    start(people("t1001"), headed)
    head = people("h2001")
    task = first_task(head, "candidate")
    head.post(f"tasks/{task['id']}/claim")
    uploaded = _upload(head, task["id"], "证明.pdf", PDF)
    assert uploaded.status_code == 201, uploaded.get_json()
    attachment = uploaded.get_json()
    assert attachment["size"] == len(PDF) and attachment["content_type"] == "application/pdf"
    download = people("t1001").get(f"attachments/{attachment['id']}")
    assert download.status_code == 200 and download.data == PDF
    assert people("h2002").get(f"attachments/{attachment['id']}").status_code == 404


def test_oversize_attachment_is_413_and_not_stored(people, solo, app):
    """A file over MAX_ATTACHMENT_BYTES is 413 and leaves no attachment behind."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    big = PDF + b"0" * app.config["MAX_ATTACHMENT_BYTES"]
    response = _upload(teacher, task["id"], "big.pdf", big)
    assert response.status_code == 413 and response.get_json()["code"] == 413
    assert teacher.get(f"tasks/{task['id']}/attachments").get_json() == []


@pytest.mark.parametrize("name, content", [("tool.exe", b"MZ\x90\x00"), ("fake.pdf", b"MZ not a pdf")])
def test_disallowed_or_mislabelled_attachment_is_422(people, solo, name, content):
    """An .exe, or a .pdf whose bytes are not PDF, is 422 on file and not stored."""
    teacher = people("t1001")
    start(teacher, solo)
    task = first_task(teacher)
    response = _upload(teacher, task["id"], name, content)
    assert response.status_code == 422 and "file" in response.get_json()["errors"]
    assert teacher.get(f"tasks/{task['id']}/attachments").get_json() == []


def _parallel_steps(pid: str, tail: str) -> bytes:
    """A process that splits into two parallel user tasks, 甲 (a) and 乙 (b); *tail* adds what follows them."""
    from tests.engine.diagrams import process

    return process(
        '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>'
        '<bpmn:userTask id="a" name="甲"/><bpmn:userTask id="b" name="乙"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="a"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="b"/>' + tail, pid=pid)


def test_submit_that_ends_the_instance_cancels_the_other_branch(people, deploy_bpmn):
    """Two parallel steps; the first ends in a terminate end event: its submit completes the instance, the other
    step is cancelled (not left in anyone's inbox) and the history ends with `completed` — the same whether
    the write is one statement (PostgreSQL) or several (SQLite)."""
    deploy_bpmn(_parallel_steps("branches", (
        '<bpmn:endEvent id="stop"><bpmn:terminateEventDefinition/></bpmn:endEvent><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f4" sourceRef="a" targetRef="stop"/>'
        '<bpmn:sequenceFlow id="f5" sourceRef="b" targetRef="end"/>')))
    teacher = people("t1001")
    started = start(teacher, "branches")
    tasks = {t["element_id"]: t for t in started["tasks"]}
    assert set(tasks) == {"a", "b"}
    done = complete(teacher, task_of(teacher, tasks["a"]["id"]), {"note": "完成"})
    assert done.status_code == 200, done.get_json()
    detail = teacher.get(f"process-instances/{started['id']}").get_json()
    assert detail["state"] == "completed"
    assert {t["element_id"]: t["state"] for t in detail["tasks"]} == {"a": "completed", "b": "cancelled"}
    assert [e["kind"] for e in detail["history"]] == ["started", "task_created", "task_created", "task_completed",
                                                       "completed"]
    assert inbox(teacher)["total"] == 0
    assert complete(teacher, task_of(teacher, tasks["b"]["id"])).status_code == 409


def test_submit_whose_instance_moved_after_its_read_changes_nothing(app, people, deploy_bpmn, monkeypatch):
    """Two parallel steps; the submit of 乙 reads, then 甲 is submitted by another request before 乙 writes.
    乙's write finds its own task as read but the instance moved: 409, and 乙 is still open as it was (on
    PostgreSQL the write is one statement on an autocommit connection: the task's part of it must not stay)."""
    import threading

    from hall.tasks import services as task_services
    deploy_bpmn(_parallel_steps("race_branches", (
        '<bpmn:parallelGateway id="join"/><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f4" sourceRef="a" targetRef="join"/>'
        '<bpmn:sequenceFlow id="f5" sourceRef="b" targetRef="join"/>'
        '<bpmn:sequenceFlow id="f6" sourceRef="join" targetRef="end"/>')))
    teacher = people("t1001")
    started = start(teacher, "race_branches")
    tasks = {t["element_id"]: task_of(teacher, t["id"]) for t in started["tasks"]}
    cookie = teacher.client.get_cookie("session").value

    def submit(task: dict, into: list) -> None:
        # Its own thread: its own app context, session and connection, as a request in a server.
        client = app.test_client()
        client.set_cookie("session", cookie)
        into.append(client.post(f"/api/v1/tasks/{task['id']}/complete", headers={"X-CSRF-Token": teacher.csrf},
                                json={"data": {"note": task["name"]}, "version": task["version"]}))

    read = task_services._load_for_action
    other: list = []

    def read_then_let_the_other_branch_go(task_id):
        loaded = read(task_id)
        if task_id == tasks["b"]["id"] and not other:
            thread = threading.Thread(target=submit, args=(tasks["a"], other))
            thread.start()
            thread.join(timeout=60)
        return loaded

    monkeypatch.setattr(task_services, "_load_for_action", read_then_let_the_other_branch_go)
    late: list = []
    thread = threading.Thread(target=submit, args=(tasks["b"], late))
    thread.start()
    thread.join(timeout=60)
    assert other[0].status_code == 200, other[0].get_json()
    assert late[0].status_code == 409, late[0].get_json()
    monkeypatch.undo()

    detail = teacher.get(f"process-instances/{started['id']}").get_json()
    assert detail["state"] == "running"
    assert {t["element_id"]: t["state"] for t in detail["tasks"]} == {"a": "completed", "b": "ready"}
    assert task_of(teacher, tasks["b"]["id"])["version"] == tasks["b"]["version"]
    assert [e["kind"] for e in detail["history"]].count("task_completed") == 1
    # 乙 can still be done, and then the instance ends.
    done = complete(teacher, task_of(teacher, tasks["b"]["id"]), {"note": "乙"})
    assert done.status_code == 200, done.get_json()
    assert teacher.get(f"process-instances/{started['id']}").get_json()["state"] == "completed"
