"""The shipped staff flows (请假申请, 用印申请): who may start them and what their forms accept, through the
API and the pages."""

from __future__ import annotations

import pytest

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
