"""The shipped staff flows (请假申请, 用印申请): who may start them and what their forms accept, through the
API and the pages."""

from __future__ import annotations

import pytest

from tests.test_flows import LEAVE, SEAL, complete, only_task, start

STAFF_FLOWS = ("leave_request", "seal_request")


# -- who may start them ------------------------------------------------------------------------------

def test_student_sees_no_staff_flow_in_the_catalogue(api, demo):
    """The catalogue offers 请假申请 and 用印申请 to a teacher, not to student 20240101."""
    api.login("t1001")
    assert set(STAFF_FLOWS) <= {d["key"] for d in api.get("services").get_json()}
    api.login("20240101")
    assert not set(STAFF_FLOWS) & {d["key"] for d in api.get("services").get_json()}


@pytest.mark.parametrize("key", STAFF_FLOWS)
def test_student_cannot_start_a_staff_flow_through_the_api(api, demo, key):
    """POST /process-instances of a staff flow by a student is 403 with a Chinese message; nothing starts."""
    api.login("20240101")
    response = api.post("process-instances", {"definition": key, "data": {}})
    assert response.status_code == 403
    assert response.get_json()["message"] == "您没有发起此流程的权限"
    assert api.get("process-instances?starter=20240101").get_json()["total"] == 0


@pytest.mark.parametrize("key", STAFF_FLOWS)
def test_student_cannot_start_a_staff_flow_from_the_page(api, demo, key):
    """The page's start button of a staff flow answers a student 403 with the Chinese reason and starts nothing."""
    api.login("20240101")
    page = api.client.post(f"/services/{key}/start", data={"_csrf": api.csrf})
    assert page.status_code == 403
    assert "您没有发起此流程的权限" in page.get_data(as_text=True)
    assert api.get("process-instances?starter=20240101").get_json()["total"] == 0


# -- what the leave forms accept ---------------------------------------------------------------------

def submit(api, username: str, element: str, data: dict):
    """The response to submitting *data* on the one open task of *username* (at *element*)."""
    task = only_task(api, username, element)
    return api.post(f"tasks/{task['id']}/complete", {"data": data, "version": task["version"]})


@pytest.mark.parametrize("change, field, message", [
    ({"days": 0}, "days", "请假天数须大于0"),
    ({"days": 0.3}, "days", "请假天数须为 0.5 的整数倍"),
    ({"start_date": "2026-12-10", "end_date": "2026-12-01"}, "end_date", "结束日期不能早于开始日期"),
    ({"start_date": "2026-12-01", "end_date": "2026-12-02", "days": 2.5}, "days",
     "请假天数不能超过起止日期所跨的天数（2 天）"),
])
def test_leave_form_refuses_a_bad_value_with_a_message_on_its_field(api, demo, change, field, message):
    """A leave of 0 days, 0.3 days, ending before it starts or longer than its dates span is 422 with the
    Chinese reason on the field, and the form stays open."""
    start(api, "leave_request")
    response = submit(api, "t1001", "fill_form", {**LEAVE, **change})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {field: [message]}
    only_task(api, "t1001", "fill_form")


def test_leave_form_takes_half_days_within_the_dates(api, demo):
    """1.5 days over the two days 2026-12-01..02 and a one-day leave starting and ending the same day pass."""
    start(api, "leave_request")
    complete(api, "t1001", "fill_form", {**LEAVE, "days": 1.5})
    start(api, "leave_request", "t1002")
    complete(api, "t1002", "fill_form", {**LEAVE, "start_date": "2026-12-03", "end_date": "2026-12-03", "days": 1})


def test_rejecting_a_leave_needs_an_opinion(api, demo):
    """不同意 without an opinion is 422 「请填写意见」 on the opinion; with one it completes."""
    start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    response = submit(api, "h2001", "head_approve", {"decision": "reject"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"opinion": ["请填写意见"]}
    assert submit(api, "h2001", "head_approve", {"decision": "reject", "opinion": ""}).status_code == 422
    complete(api, "h2001", "head_approve", {"decision": "reject", "opinion": "期末考试周，不宜请假。"})


def test_approving_a_leave_needs_no_opinion(api, demo):
    """同意 without an opinion still completes."""
    start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    complete(api, "h2001", "head_approve", {"decision": "approve"})


def test_leave_page_shows_the_rule_messages_next_to_their_fields(api, demo):
    """Posting the leave form page with an end date before the start and 0 days re-renders it (422) with
    「结束日期不能早于开始日期」 and 「请假天数须大于0」 under those fields."""
    start(api, "leave_request")
    task = only_task(api, "t1001", "fill_form")
    form = {**{k: str(v) for k, v in LEAVE.items()}, "start_date": "2026-12-10", "end_date": "2026-12-01",
            "days": "0", "action": "submit", "version": str(task["version"]), "_csrf": api.csrf}
    page = api.client.post(f"/tasks/{task['id']}", data=form)
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert '<p class="field-error" id="end_date-error">结束日期不能早于开始日期</p>' in html
    assert '<p class="field-error" id="days-error">请假天数须大于0</p>' in html


# -- what the seal forms accept ----------------------------------------------------------------------

def test_a_contract_needs_its_text(api, demo):
    """是否合同=是 without the contract text is 422 「请填写合同文本」 on that field; a non-contract needs none."""
    start(api, "seal_request")
    contract = {k: v for k, v in SEAL.items() if k != "contract_text"}
    response = submit(api, "t1001", "fill_form", contract)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"contract_text": ["请填写合同文本"]}
    complete(api, "t1001", "fill_form", {**contract, "is_contract": False})


def stamping_task_of(api, copies: int) -> None:
    """A seal request for *copies* copies, approved by both reviewers, waiting at s3004's 用印."""
    start(api, "seal_request")
    complete(api, "t1001", "fill_form", {**SEAL, "copies": copies})
    complete(api, "o3002", "office_review", {"office_approved": True})
    complete(api, "l3003", "legal_review", {"legal_approved": True})


def test_seal_keeper_cannot_stamp_more_copies_than_requested(api, demo):
    """用印 of 100000 copies for a request of 3 is 422 naming the limit on stamped_copies, and the task stays
    open; 3 copies complete it."""
    stamping_task_of(api, 3)
    for too_many in (4, 100000):
        response = submit(api, "s3004", "stamp", {"stamped_copies": too_many})
        assert response.status_code == 422
        assert response.get_json()["errors"] == {"stamped_copies": ["实际用印份数不能超过申请的份数（3 份）"]}
    complete(api, "s3004", "stamp", {"stamped_copies": 3})


def test_stamp_page_shows_the_copies_limit_next_to_the_field(api, demo):
    """The 用印 page posted with more copies than requested re-renders (422) with the limit under the field."""
    stamping_task_of(api, 2)
    task = only_task(api, "s3004", "stamp")
    page = api.client.post(f"/tasks/{task['id']}", data={
        "stamped_copies": "5", "action": "submit", "version": str(task["version"]), "_csrf": api.csrf})
    assert page.status_code == 422
    assert ('<p class="field-error" id="stamped_copies-error">实际用印份数不能超过申请的份数（2 份）</p>'
            in page.get_data(as_text=True))


def test_a_comparison_with_instance_data_is_skipped_without_that_data():
    """An `x-compare` rule whose instance variable is absent passes (nothing to compare), so a form stays
    usable in a flow that does not provide it; the standard keywords still apply."""
    from hall.tasks.services import validate_form

    schema = {"type": "object", "properties": {"n": {"type": "integer", "title": "数量"}},
              "x-compare": [{"field": "n", "op": "<=", "value": {"instance": "limit"}}]}
    validate_form(schema, {"n": 7})
    validate_form(schema, {"n": 7}, {"limit": 7})
    with pytest.raises(Exception) as refused:
        validate_form(schema, {"n": 8}, {"limit": 7})
    assert refused.value.errors == {"n": ["数量不能超过7"]}


def test_rules_written_wrongly_are_skipped_and_an_odd_message_falls_back():
    """`x-compare` rules a form author wrote wrongly (a list as the field, daysBetween with one date) check
    nothing instead of failing the submit with a 500; a message with unknown placeholders gives the default."""
    from hall.errors import Invalid
    from hall.tasks.services import validate_form

    schema = {"type": "object", "properties": {"n": {"type": "integer", "title": "数量"}, "d": {"type": "string"}},
              "x-compare": [{"field": ["n"], "op": "<=", "value": {"field": "d"}},
                            {"field": "n", "op": "<=", "value": {"daysBetween": ["d"]}},
                            {"field": "n", "op": "<=", "value": {"field": ["d"]}},
                            {"field": "n", "op": "<", "value": {"instance": "cap"}, "message": "{what}超了"}]}
    validate_form(schema, {"n": 7, "d": "2026-12-01"})
    with pytest.raises(Invalid) as refused:
        validate_form(schema, {"n": 7, "d": "2026-12-01"}, {"cap": 7})
    assert refused.value.errors == {"n": ["数量须小于7"]}


# -- how a returned step reads -----------------------------------------------------------------------

def test_a_returned_step_reads_in_chinese_on_the_task_and_instance_pages(api, demo):
    """After 退回 the applicant's reopened form and the instance page show the head's step as
    审批意见 退回 and 退回理由 with the reason, never the raw `return` or `return_reason`."""
    started = start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    head_task = only_task(api, "h2001", "head_approve")
    response = api.post(f"tasks/{head_task['id']}/return",
                        {"reason": "请补充调课安排", "version": head_task["version"]})
    assert response.status_code == 200, response.get_json()
    reopened = only_task(api, "t1001", "fill_form")
    pages = [api.client.get(f"/tasks/{reopened['id']}"), api.client.get(f"/instances/{started['id']}"),
             api.client.get(f"/tasks/{head_task['id']}")]
    for page in pages:
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "<dt>审批意见</dt><dd>退回</dd>" in html
        assert "<dt>退回理由</dt><dd>请补充调课安排</dd>" in html
        assert "return_reason" not in html and "<dd>return</dd>" not in html


def test_a_returned_step_is_marked_in_the_task_lists(api, demo):
    """待办 and the home page mark the reopened form 已退回; the teacher's other, fresh form is not marked,
    and once resubmitted and returned no more, nothing is marked."""
    start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    fresh = start(api, "leave_request")
    head_task = only_task(api, "h2001", "head_approve")
    assert api.post(f"tasks/{head_task['id']}/return",
                    {"reason": "请补充调课安排", "version": head_task["version"]}).status_code == 200
    api.login("t1001")
    reopened = next(t for t in api.get("tasks?view=open").get_json()["items"] if t["instance_id"] != fresh["id"])
    fresh_task = next(t for t in api.get("tasks?view=open").get_json()["items"] if t["instance_id"] == fresh["id"])
    for path in ("/tasks", "/"):
        html = api.client.get(path).get_data(as_text=True)
        assert html.count("data-returned>已退回") == 1, path
        row = html[html.index(f'data-task="{reopened["id"]}"'):]
        assert row.index("data-returned") < row.index("</a>"), path
        fresh_row = html[html.index(f'data-task="{fresh_task["id"]}"'):]
        assert "data-returned" not in fresh_row[:fresh_row.index("</a>")], path
    task = api.get(f"tasks/{reopened['id']}").get_json()
    assert api.post(f"tasks/{task['id']}/complete", {"data": LEAVE, "version": task["version"]}).status_code == 200
    assert "data-returned" not in api.client.get("/tasks").get_data(as_text=True)


# -- the result of a finished leave ------------------------------------------------------------------

def test_a_finished_leave_shows_its_result_in_the_header_the_list_and_the_message(api, demo, app, monkeypatch):
    """A leave the head rejects shows 不同意 next to 已办结 on its instance page and in 我发起的, and the
    applicant's message says so; an approved one shows 同意."""
    from tests.notifications.helpers import dispatch, messages

    monkeypatch.setitem(app.config, "NOTIFY_SETTLE_SECONDS", 0)  # events become messages at once
    rejected = start(api, "leave_request")["id"]
    complete(api, "t1001", "fill_form", LEAVE)
    complete(api, "h2001", "head_approve", {"decision": "reject", "opinion": "期末考试周，不宜请假。"})
    approved = start(api, "leave_request")["id"]
    complete(api, "t1001", "fill_form", LEAVE)
    complete(api, "h2001", "head_approve", {"decision": "approve"})

    api.login("t1001")
    for instance_id, result in ((rejected, "不同意"), (approved, "同意")):
        html = api.client.get(f"/instances/{instance_id}").get_data(as_text=True)
        assert f'data-state="completed">已办结</span> <span class="state outcome" data-outcome>{result}</span>' in html
    mine = api.client.get("/mine").get_data(as_text=True)
    assert mine.count("data-outcome>不同意</span>") == 1 and mine.count("data-outcome>同意</span>") == 1
    dispatch()
    done = [m for m in messages("t1001") if m.kind == "completed"]
    assert sorted(m.title.split("：")[0] for m in done) == ["申请已办结（不同意）", "申请已办结（同意）"]
    assert any(m.body.endswith("已办结，结果：不同意。") for m in done)


def test_the_api_gives_a_finished_instances_result(api, demo):
    """GET /process-instances/{id} carries the result as {value, label} once the leave is decided, null before."""
    started = start(api, "leave_request")["id"]
    complete(api, "t1001", "fill_form", LEAVE)
    api.login("t1001")
    assert api.get(f"process-instances/{started}").get_json()["outcome"] is None
    complete(api, "h2001", "head_approve", {"decision": "reject", "opinion": "期末考试周，不宜请假。"})
    api.login("t1001")
    assert api.get(f"process-instances/{started}").get_json()["outcome"] == {"value": "reject", "label": "不同意"}


def test_a_leave_decided_by_hr_shows_hrs_decision(api, demo):
    """A long leave the head approves and 人事处 rejects ends 不同意 (the later decision wins)."""
    started = start(api, "leave_request")["id"]
    complete(api, "t1001", "fill_form", {**LEAVE, "days": 5, "end_date": "2026-12-05"})
    complete(api, "h2001", "head_approve", {"decision": "approve"})
    complete(api, "r3001", "hr_approve", {"hr_decision": "reject", "hr_opinion": "年假已用完"})
    api.login("t1001")
    assert "data-outcome>不同意</span>" in api.client.get(f"/instances/{started}").get_data(as_text=True)


# -- polish: defaults and choice messages ------------------------------------------------------------

def test_boolean_defaults_come_preselected_on_a_fresh_form(api, demo):
    """The seal form opens with 是否合同 = 否 (its schema default) checked, and 是 not."""
    import re

    start(api, "seal_request")
    html = api.client.get(f"/tasks/{only_task(api, 't1001', 'fill_form')['id']}").get_data(as_text=True)
    assert re.search(r'name="is_contract" value="false"\s+checked', html)
    assert not re.search(r'name="is_contract" value="true"\s+checked', html)


def test_a_missing_choice_asks_to_choose(api, demo):
    """An unanswered radio or select says 请选择…, a missing text still says 请填写…."""
    start(api, "leave_request")
    data = {k: v for k, v in LEAVE.items() if k not in ("leave_type", "reason")}
    errors = submit(api, "t1001", "fill_form", data).get_json()["errors"]
    assert errors == {"leave_type": ["请选择请假类型"], "reason": ["请填写请假事由"]}
    complete(api, "t1001", "fill_form", LEAVE)
    assert submit(api, "h2001", "head_approve", {}).get_json()["errors"] == {"decision": ["请选择审批意见"]}


# -- 转办 hands over what was typed ------------------------------------------------------------------

def test_transfer_hands_over_what_was_typed(api, demo):
    """h2001 types an opinion on the approval page and transfers it (转办) to h2002, who finds the text in
    the form; a transfer to nobody re-renders the page with the message and the typed text."""
    start(api, "leave_request")
    complete(api, "t1001", "fill_form", LEAVE)
    task = only_task(api, "h2001", "head_approve")
    typed = {"opinion": "拟同意，请人事处备案", "version": str(task["version"]), "_csrf": api.csrf}
    refused = api.client.post(f"/tasks/{task['id']}", data={**typed, "action": "transfer", "username": "nobody"})
    assert refused.status_code == 422 and "拟同意，请人事处备案" in refused.get_data(as_text=True)
    moved = api.client.post(f"/tasks/{task['id']}", data={**typed, "action": "transfer", "username": "h2002"})
    assert moved.status_code == 302, moved.get_data(as_text=True)
    handed = only_task(api, "h2002", "head_approve")
    assert handed["id"] == task["id"]
    assert "拟同意，请人事处备案" in api.client.get(f"/tasks/{task['id']}").get_data(as_text=True)
