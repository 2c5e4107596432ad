"""Notifications through a real Celery worker on Redis: a reminder and an escalation, and a worker killed
in the middle of a delivery that, once restarted, delivers exactly once.

The worker runs `hall.worker:celery` in its own process on the test database; Redis is
HALL_TEST_REDIS_URL or a redis-server of our own (the `redis_url` fixture of tests/test_worker.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hall.db_types import utcnow
from hall.extensions import db
from tests.notifications.helpers import choose, head_task_flow, messages, start, user
from tests.test_worker import CELERY, ROOT, _stop, _wait_for, redis_url  # noqa: F401 - redis_url is a fixture


@pytest.fixture
def worker_env(app, redis_url, tmp_path, receiver):  # noqa: F811
    """Environment of the workers: the test database, the broker, a private queue, the test receiver."""
    env = dict(os.environ)
    env.update({
        "HALL_BROKER_URL": redis_url,
        "HALL_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "HALL_INSTANCE_PATH": str(tmp_path),
        "HALL_SECRET_KEY": "worker-test",
        "HALL_TASK_QUEUE": f"hall-notify-{uuid.uuid4().hex[:12]}",
        "HALL_DINGTALK_WEBHOOK": receiver.url + "/robot/send",
        "HALL_NOTIFY_CLAIM_SECONDS": "1",
        "HALL_NOTIFY_SETTLE_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
    })
    return env


@pytest.fixture
def broker(redis_url):  # noqa: F811
    from celery import Celery

    client = Celery("hall-notify-test-client", broker=redis_url)
    client.conf.broker_connection_retry_on_startup = True
    yield client
    client.close()


class Workers:
    """Starts `celery worker` processes on the private queue and stops whatever is left at the end."""

    def __init__(self, env, broker, folder):
        self.env, self.broker, self.folder, self.processes = env, broker, folder, []

    def start(self):
        name = f"hall-notify-{uuid.uuid4().hex[:8]}@localhost"
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [CELERY, "-A", "hall.worker:celery", "worker", "--pool=solo", "--loglevel=info", "-n", name,
                 "-Q", self.env["HALL_TASK_QUEUE"], "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        self.processes.append(process)

        def ready():
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            return bool(self.broker.control.ping(destination=[name], timeout=0.5))

        _wait_for(ready, 60, "worker answering ping", log)
        return process, log

    def send(self, task: str, *args):
        self.broker.send_task(task, args=list(args), queue=self.env["HALL_TASK_QUEUE"])


@pytest.fixture
def workers(worker_env, broker, tmp_path):
    pool = Workers(worker_env, broker, tmp_path)
    yield pool
    for process in pool.processes:
        _stop(process)


def _set_due(task_id: int, due):
    from hall.tasks.models import HumanTask

    db.session.execute(sa.update(HumanTask).where(HumanTask.id == task_id).values(due_at=due))
    db.session.commit()


def test_worker_fires_a_reminder_and_an_escalation(demo, deploy_bpmn, workers):
    """The deadlines job sent through Redis reminds the holder of a task due soon and escalates an overdue one."""
    from tests.conftest import bpmn_sequence

    head_task_flow(deploy_bpmn, hours=3)
    _, soon = start()
    deploy_bpmn(bpmn_sequence("own_task", 1, lane="applicant"))
    _, late = start("own_task")
    _set_due(late, utcnow() - timedelta(hours=1))
    _, log = workers.start()
    workers.send("hall.notifications.deadlines")
    _wait_for(lambda: messages("h2001", "reminder") and messages("h2001", "escalation"), 30,
              "reminder and escalation written by the worker", log)
    assert [m.task_id for m in messages("h2001", "reminder")] == [soon]
    assert [m.task_id for m in messages("h2001", "escalation")] == [late]
    assert messages("t1001", "escalation") == []


def _delivery():
    from hall.notifications.models import Delivery

    db.session.rollback()
    return db.session.scalar(sa.select(Delivery))


def test_worker_killed_mid_delivery_delivers_exactly_once_after_restart(demo, workers, receiver):
    """SIGKILL while the webhook request is open; a restarted worker sends it again and it arrives once."""
    from hall.notifications import services

    choose("h2001", ["dingtalk"])
    [delivery_id] = services.notify([dict(user_id=user("h2001").id, kind="reminder", title="即将到期：测试",
                                          body="请及时办理。", dedup_key="test:kill")])
    db.session.commit()
    receiver.hold.set()  # the first request is held open until the worker is dead
    first, log = workers.start()
    workers.send("hall.notifications.deliver", delivery_id)
    _wait_for(lambda: len(receiver.requests) == 1, 30, "the held request", log)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    receiver.release.set()
    assert (_delivery().state, _delivery().attempts) == ("sending", 1)

    _, log = workers.start()
    # The dead worker's claim expires (HALL_NOTIFY_CLAIM_SECONDS=1); then the sweep takes it over.
    _wait_for(lambda: _delivery().claimed_until < utcnow(), 10, "claim expiry")
    workers.send("hall.notifications.deliver_due")
    _wait_for(lambda: _delivery().state == "sent", 30, "delivery after restart", log)
    delivery = _delivery()
    assert delivery.attempts == 2
    assert receiver.completed == [delivery.idempotency_key]
    assert receiver.keys() == {delivery.idempotency_key}
    assert len(receiver.requests) == 2
