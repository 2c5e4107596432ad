"""Background jobs through a real Celery worker and beat on Redis, and the same job in eager mode.

The worker runs `hall.worker:celery` in its own process on the test database (a SQLite file or
PostgreSQL), so what it commits is what the test reads. Redis is HALL_TEST_REDIS_URL, or a redis-server
this module starts on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from hall.db_types import utcnow
from hall.extensions import db
from tests.test_timers import timer_between_tasks

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, seconds: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"{what} not reached within {seconds} s\n{tail}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """HALL_TEST_REDIS_URL, or a throwaway redis-server of our own."""
    url = os.environ.get("HALL_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no HALL_TEST_REDIS_URL and no redis-server binary: cannot run a real broker")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    try:
        _wait_for(answers, 10, "redis-server start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def worker_env(app, redis_url, tmp_path_factory):
    """Environment of worker and beat: the test database, the broker and a queue of this test run."""
    folder = tmp_path_factory.mktemp("worker")
    env = dict(os.environ)
    env.update(
        {
            "HALL_BROKER_URL": redis_url,
            "HALL_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "HALL_INSTANCE_PATH": str(folder),
            "HALL_SECRET_KEY": "worker-test",
            "HALL_TASK_QUEUE": f"hall-test-{uuid.uuid4().hex[:12]}",
            "HALL_TIMER_POLL_SECONDS": "0.5",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env, folder


@pytest.fixture(scope="module")
def broker(worker_env, redis_url):
    """A Celery client of the broker (not the hall's app, which stays eager in the test process)."""
    from celery import Celery

    client = Celery("hall-test-client", broker=redis_url)
    client.conf.broker_connection_retry_on_startup = True
    yield client
    client.close()


@pytest.fixture(scope="module")
def worker(worker_env, broker):
    """A real `celery worker` process on hall.worker:celery, killed when the module is done."""
    env, folder = worker_env
    log = folder / "worker.log"
    name = f"hall-test-{uuid.uuid4().hex[:8]}@%h"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "hall.worker:celery",
                "worker",
                "--pool=solo",
                "--loglevel=info",
                "-n",
                name,
                "-Q",
                env["HALL_TASK_QUEUE"],
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready():
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            return bool(broker.control.ping(timeout=0.5))

        _wait_for(ready, 60, "worker answering ping", log)
        yield process, log
    finally:
        _stop(process)


def _instance_waiting_on_timer():
    """A started `timed` instance whose first task is done, so it waits on its PT1S timer."""
    from hall.accounts.models import User
    from hall.processes import services
    from hall.processes.models import Timer
    from hall.tasks import services as tasks
    from hall.tasks.models import HumanTask

    admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
    instance = services.start_instance("timed", admin, {})
    task = db.session.scalar(sa.select(HumanTask).where(HumanTask.instance_id == instance.id))
    tasks.complete_task(task.id, admin, {}, expected_version=task.version)
    timer = db.session.scalar(sa.select(Timer).where(Timer.instance_id == instance.id))
    return instance.id, timer.due_at


def _current_elements(instance_id: int) -> list[str]:
    from hall.processes.models import ProcessInstance

    db.session.rollback()  # a fresh snapshot: the worker commits in another process
    return db.session.get(ProcessInstance, instance_id).current_elements


def test_fire_timers_job_runs_in_process_without_broker(demo, deploy_bpmn):
    """Without a broker the job is eager: delay() fires the due timer in this process."""
    from hall.processes.tasks import fire_due_timers_job

    deploy_bpmn(timer_between_tasks())
    instance_id, due = _instance_waiting_on_timer()
    _wait_for(lambda: utcnow() >= due, 5, "timer due time")
    fire_due_timers_job.delay()
    assert _current_elements(instance_id) == ["t2"]


def test_beat_schedule_names_the_timer_job(app):
    """The beat schedule sends hall.fire_due_timers every HALL_TIMER_POLL_SECONDS."""
    schedule = app.extensions["celery"].conf.beat_schedule
    assert schedule["fire-due-timers"] == {"task": "hall.fire_due_timers", "schedule": app.config["TIMER_POLL_SECONDS"]}


def test_worker_fires_timer_sent_through_the_broker(demo, deploy_bpmn, worker, broker, worker_env):
    """A fire-due-timers message sent through Redis is run by the worker and the instance reaches t2."""
    deploy_bpmn(timer_between_tasks())
    instance_id, due = _instance_waiting_on_timer()
    _wait_for(lambda: utcnow() >= due, 5, "timer due time")
    broker.send_task("hall.fire_due_timers", queue=worker_env[0]["HALL_TASK_QUEUE"])
    _wait_for(lambda: _current_elements(instance_id) == ["t2"], 30, "worker moving the instance", worker[1])


def test_beat_and_worker_fire_due_timers_unprompted(demo, deploy_bpmn, worker, worker_env):
    """With `celery beat` running, the instance passes its timer without anyone sending a message."""
    env, folder = worker_env
    deploy_bpmn(timer_between_tasks())
    instance_id, _ = _instance_waiting_on_timer()
    log = folder / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [
                CELERY,
                "-A",
                "hall.worker:celery",
                "beat",
                "--loglevel=info",
                "-s",
                str(folder / "beat-schedule"),
                "--pidfile=",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(lambda: _current_elements(instance_id) == ["t2"], 45, "beat + worker moving the instance", log)
    finally:
        _stop(beat)
    assert "hall.fire_due_timers" in log.read_text(errors="replace")
