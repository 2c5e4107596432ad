"""The spine end to end through the API: deploy, start, work the inbox, finish."""

from tests.conftest import bpmn_sequence


def test_sequential_process_runs_to_completion(api, demo, deploy_bpmn):
    """A three-step process started by a teacher completes after three submits, with history."""
    deploy_bpmn(bpmn_sequence("smoke", 3))
    api.login("t1001")
    started = api.post("process-instances", {"definition": "smoke", "data": {"x": 1}})
    assert started.status_code == 201, started.get_json()
    instance = started.get_json()
    assert instance["state"] == "running" and instance["current_elements"] == ["t1"]
    for step in range(3):
        inbox = api.get("tasks?view=mine").get_json()
        assert inbox["total"] == 1
        task = api.get(f"tasks/{inbox['items'][0]['id']}").get_json()
        done = api.post(f"tasks/{task['id']}/complete", {"data": {"step": step}, "version": task["version"]})
        assert done.status_code == 200, done.get_json()
    final = api.get(f"process-instances/{instance['id']}").get_json()
    assert final["state"] == "completed"
    assert [e["kind"] for e in final["history"]].count("task_completed") == 3
