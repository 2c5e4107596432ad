"""TaskSchema's hand-written dump (hall/tasks/schemas.py) gives exactly what marshmallow's fields give."""

from __future__ import annotations

import sqlalchemy as sa
from marshmallow import Schema

from hall.accounts.models import User
from hall.extensions import db
from hall.tasks import services
from hall.tasks.models import HumanTask
from hall.tasks.schemas import TaskListSchema, TaskSchema
from tests.conftest import bpmn_sequence


def _generic(task, many=False):
    return Schema.dump(TaskSchema(), task, many=many)


def test_fast_dump_equals_marshmallow_on_orm_tasks_and_submit_rows(app, api):
    from hall.org.demo import load_demo_organisation
    from hall.processes import services as processes

    with app.app_context():
        load_demo_organisation()
        processes.deploy({"schema_flow.bpmn": bpmn_sequence("schema_flow", 3)}, {})
        db.session.remove()
    api.login("t1001")
    for _ in range(2):
        assert api.post("process-instances", {"definition": "schema_flow", "data": {}}).status_code == 201
    first = api.get("tasks?view=mine").get_json()["items"][0]
    done = api.post(f"tasks/{first['id']}/complete", {"data": {"ok": True}, "version": first["version"]})
    assert done.status_code == 200
    with app.test_request_context():
        tasks = db.session.scalars(sa.select(HumanTask).order_by(HumanTask.id)).all()
        # Open and completed tasks, assigned or not, with and without due dates.
        assert {t.state for t in tasks} >= {"ready", "completed"}
        for task in tasks:
            assert TaskSchema().dump(task) == _generic(task)
        assert TaskSchema(many=True).dump(tasks) == _generic(tasks, many=True)
        assert TaskSchema().dump(tasks, many=True) == _generic(tasks, many=True)
        listed = TaskListSchema().dump({"items": tasks, "total": len(tasks), "page": 1, "page_size": 20})
        assert listed["items"] == _generic(tasks, many=True)
        # The submit path answers with a Core row, not an ORM object.
        ready = next(t for t in tasks if t.state == "ready")
        row, _, _ = services._load_for_action(ready.id)
        assert TaskSchema().dump(row) == _generic(row)
        assert list(TaskSchema().dump(row)) == list(TaskSchema().fields)  # every field, in order
        # The inbox lists plain rows (services.ListedTask): each shows what its ORM task shows.
        user = db.session.scalar(sa.select(User).where(User.username == "t1001"))
        shown = {task.id: _generic(task) for task in tasks}
        for view in ("open", "mine", "completed"):
            items, total = services.inbox(user, view)
            assert items and total == len(items)
            for item in items:
                assert TaskSchema().dump(item) == _generic(item) == shown[item.id]
        db.session.remove()


def test_subclasses_and_field_selections_keep_marshmallow(app):
    """TaskDetailSchema and `only=` are not the plain shape: they go through marshmallow."""
    from hall.tasks.schemas import TaskDetailSchema

    class Plain:
        id, instance_id, element_id = 1, 2, "a"

    assert TaskSchema(only=("id", "element_id")).dump(Plain()) == {"id": 1, "element_id": "a"}
    assert TaskDetailSchema(only=("id",)).dump(Plain()) == {"id": 1}
