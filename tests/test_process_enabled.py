"""停用 / 启用 of a process by administrators: off the catalogue, no new starts, running instances go on."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hall.audit.models import AuditEvent
from hall.extensions import db
from tests.conftest import Api, bpmn_sequence


@pytest.fixture
def flow(demo, deploy_bpmn):
    deploy_bpmn(bpmn_sequence("plain", 2))
    return "plain"


def _keys(client) -> set[str]:
    response = client.get("services")
    assert response.status_code == 200
    return {d["key"] for d in response.get_json()}


def test_disabled_process_leaves_the_catalogue_and_refuses_starts_but_running_ones_go_on(flow, app):
    """After 停用 the process is not in anyone's 办事 and a start is 409 in Chinese; an open task still completes."""
    admin, teacher, student = Api(app).login("admin"), Api(app).login("t1001"), Api(app).login("20240101")
    started = teacher.post("process-instances", {"definition": flow, "data": {}})
    assert started.status_code == 201
    response = admin.post(f"process-definitions/{flow}/disable")
    assert response.status_code == 200 and response.get_json()["enabled"] is False
    assert flow not in _keys(teacher) and flow not in _keys(student)
    refused = teacher.post("process-instances", {"definition": flow, "data": {}})
    assert refused.status_code == 409 and "已停用" in refused.get_json()["message"]
    [task] = teacher.get("tasks", query_string={"view": "mine"}).get_json()["items"]
    task = teacher.get(f"tasks/{task['id']}").get_json()
    done = teacher.post(f"tasks/{task['id']}/complete", {"data": {}, "version": task["version"]})
    assert done.status_code == 200, done.get_json()
    assert db.session.scalar(sa.select(AuditEvent.detail).where(AuditEvent.kind == "process_disabled"))["key"] == flow


def test_enabled_again_the_process_is_back_and_startable(flow, app):
    """启用 after 停用 puts the process back in 办事 and it starts again; both are audit-logged."""
    admin, teacher = Api(app).login("admin"), Api(app).login("t1001")
    assert admin.post(f"process-definitions/{flow}/disable").status_code == 200
    assert admin.post(f"process-definitions/{flow}/enable").get_json()["enabled"] is True
    assert flow in _keys(teacher)
    assert teacher.post("process-instances", {"definition": flow, "data": {}}).status_code == 201
    kinds = list(db.session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.actor == "admin")
                                    .where(AuditEvent.kind.like("process_%")).order_by(AuditEvent.id)))
    assert kinds == ["process_disabled", "process_enabled"]


def test_disabled_stays_disabled_when_a_new_version_is_deployed(flow, app, deploy_bpmn):
    """A redeploy (new version) of a disabled process does not put it back into the catalogue."""
    admin, teacher = Api(app).login("admin"), Api(app).login("t1001")
    admin.post(f"process-definitions/{flow}/disable")
    deploy_bpmn(bpmn_sequence("plain", 3))
    assert flow not in _keys(teacher)


def test_only_administrators_disable_and_unknown_keys_are_404(flow, app):
    """A teacher gets 403 on 停用; an administrator gets 404 for a key that does not exist."""
    assert Api(app).login("t1001").post(f"process-definitions/{flow}/disable").status_code == 403
    assert Api(app).login("admin").post("process-definitions/nope/disable").status_code == 404
