"""The inbox benchmark (DESIGN §9: an inbox page with 1,000,000 task rows and 20,000 users, p95 ≤ 20 ms).

    python -m bench.inbox [--tasks 1000000] [--users 20000] [--people 100]

PostgreSQL (the production database; the database `bench_inbox` is dropped, created and dropped again).
The hall's own migrations and demo organisation, then set-based SQL fills the tables to size: users up
to --users (each a teacher in one of the demo college's units, signing in with the demo password),
instances of a 10-step process with one task row per step — nine completed by the person who started it,
the tenth open: assigned to that person (80 %) or offered to the teachers of the starter's unit (20 %,
with a candidate row). gunicorn serves the hall (4 gthread workers × 2 threads, the README's production
command) and --people persons, picked evenly over the users, each sign in and open every view of the inbox (待办
open, mine, candidate, 已办 completed), first and second page, over HTTP; the table gives median and p95 per
view. The same people also open the first two pages of their instance list (the instances they may see:
started, took part in), which has no budget of its own and is shown for comparison. Every loop is bounded and
the server is stopped in any case.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import bench
from bench import spine

DB = "bench_inbox"
VIEWS = ("open", "mine", "candidate", "completed")


def fill(app, tasks: int, users: int) -> dict:
    """Bring the database to *tasks* task rows and *users* users with set-based SQL; returns counts."""
    from hall.extensions import db

    instances = tasks // 10
    with app.app_context():
        conn = db.session.connection()
        run = conn.exec_driver_sql
        template = run("SELECT password_hash FROM users WHERE username = 't1001'").scalar_one()
        units = [row[0] for row in run("SELECT id FROM org_units WHERE kind <> 'college' ORDER BY id")]
        existing = run("SELECT count(*) FROM users").scalar_one()
        run("CREATE TEMP TABLE bench_units AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM org_units "
            "WHERE id = ANY(%(units)s)", {"units": units})
        # New people: u000001…, each a teacher of one unit (round robin), the demo password.
        run("INSERT INTO users (username, name, active, password_hash, org_unit_id, created_at) "
            "SELECT 'u' || lpad(g::text, 6, '0'), '教师' || g, true, %(hash)s, "
            "(SELECT id FROM bench_units WHERE n = g %% %(count)s), now() "
            "FROM generate_series(1, %(new)s) AS g",
            {"hash": template, "count": len(units), "new": max(0, users - existing)})
        run("INSERT INTO memberships (user_id, role_code, org_unit_id) "
            "SELECT id, 'teacher', org_unit_id FROM users WHERE username LIKE 'u%%'", {})
        version = run("SELECT d.id, d.latest_version_id FROM process_definitions d WHERE d.key = %(key)s",
                      {"key": spine.PROCESS}).one()
        # Instances, each started by a person spread over all users (a multiplicative step, not random(), so
        # every run builds the same data).
        run("CREATE TEMP TABLE bench_people AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, org_unit_id "
            "FROM users")
        run("INSERT INTO process_instances (definition_id, process_version_id, state, title, workflow, version, "
            "starter_id, org_unit_id, current_elements, completed_elements, started_at) "
            "SELECT %(definition)s, %(version)s, 'running', '申请 ' || g, '{}'::jsonb, 1, p.id, p.org_unit_id, "
            "'[\"t10\"]', '[]', now() - (g || ' minutes')::interval "
            "FROM generate_series(1, %(instances)s) AS g "
            "JOIN bench_people p ON p.n = (g::bigint * 7919) %% %(people)s",
            {"definition": version[0], "version": version[1], "instances": instances, "people": users})
        # Ten task rows per instance: steps 1–9 completed by the starter, step 10 open.
        run("INSERT INTO human_tasks (instance_id, engine_task_id, element_id, name, kind, state, assignee_id, "
            "version, created_at, completed_by_id, completed_at) "
            "SELECT i.id, md5(i.id || '-' || s), 't' || s, '步骤' || s, 'user', "
            "CASE WHEN s < 10 THEN 'completed' ELSE 'ready' END, "
            "CASE WHEN s < 10 OR i.id %% 5 <> 0 THEN i.starter_id END, "
            "CASE WHEN s < 10 THEN 2 ELSE 1 END, i.started_at + (s || ' minutes')::interval, "
            "CASE WHEN s < 10 THEN i.starter_id END, "
            "CASE WHEN s < 10 THEN i.started_at + ((s + 1) || ' minutes')::interval END "
            "FROM process_instances i CROSS JOIN generate_series(1, 10) AS s "
            "WHERE i.title LIKE '申请 %%'", {})
        run("INSERT INTO task_candidates (task_id, role_code, org_unit_id, claimable) "
            "SELECT t.id, 'teacher', i.org_unit_id, true "
            "FROM human_tasks t JOIN process_instances i ON i.id = t.instance_id "
            "WHERE t.state = 'ready' AND t.assignee_id IS NULL", {})
        db.session.commit()
        run = db.session.connection().exec_driver_sql
        counts = {name: run(f"SELECT count(*) FROM {name}").scalar_one()
                  for name in ("users", "human_tasks", "task_candidates", "process_instances")}
        db.session.connection().exec_driver_sql("ANALYZE")  # allowed in a transaction (VACUUM is not)
        db.session.commit()
        db.session.remove()
    return counts


def people(app, count: int) -> list[str]:
    """*count* usernames spread evenly over all users (by id)."""
    from hall.extensions import db

    with app.app_context():
        names = [row[0] for row in db.session.connection().exec_driver_sql(
            "SELECT username FROM users WHERE password_hash IS NOT NULL ORDER BY id")]
        db.session.remove()
    step = max(1, len(names) // count)
    return names[::step][:count]


def measure(port: int, usernames: list[str]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {f"{view} p{page}": [] for view in VIEWS for page in (1, 2)}
    samples.update({f"instances p{page}": [] for page in (1, 2)})
    for username in usernames:
        client = spine.Client(port)
        client.csrf = client.ok("POST", "auth/login", {"username": username, "password": spine.PASSWORD})["csrf_token"]
        client.ok("GET", "tasks?view=open")  # this person's first request: connection, caches
        for view in VIEWS:
            for page in (1, 2):
                began = time.perf_counter()
                client.ok("GET", f"tasks?view={view}&page={page}&page_size=20")
                samples[f"{view} p{page}"].append(time.perf_counter() - began)
        for page in (1, 2):
            began = time.perf_counter()
            client.ok("GET", f"process-instances?page={page}&page_size=20")
            samples[f"instances p{page}"].append(time.perf_counter() - began)
        client.close()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="task rows (default 1,000,000)")
    parser.add_argument("--users", type=int, default=20_000, help="users (default 20,000)")
    parser.add_argument("--people", type=int, default=100, help="people whose inbox is opened (default 100)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn gthread workers (default 4, × 2 threads)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="hall-bench-inbox-"))
    try:
        url = bench.database_url("postgresql", folder, DB)
        app = spine.make_app(url, folder)
        spine.prepare(app)
        began = time.monotonic()
        counts = fill(app, args.tasks, args.users)
        print(f"filled in {time.monotonic() - began:.0f} s: {counts}", file=sys.stderr, flush=True)
        usernames = people(app, args.people)
        with app.app_context():
            from hall.extensions import db

            db.engine.dispose()
        with spine.server(url, folder, args.workers) as (port, _master):
            samples = measure(port, usernames)
    finally:
        bench.drop_database("postgresql", DB)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"Quality Hall inbox benchmark — {platform.node()}, {os.cpu_count()} CPUs, PostgreSQL; "
          f"{counts['human_tasks']:,} task rows, {counts['users']:,} users, {counts['task_candidates']:,} "
          f"candidate rows; {len(usernames)} people × 4 views × 2 pages over HTTP (gunicorn {args.workers} "
          f"gthread workers × 2 threads)\n")
    print("| view, page | median ms | p95 ms | budget |")
    print("|---|---|---|---|")
    for key, values in samples.items():
        median, p95 = spine.median_p95(values)
        budget = "(no budget)" if key.startswith("instances") else "p95 ≤ 20 ms"
        print(f"| {key} | {median * 1000:.2f} | {p95 * 1000:.2f} | {budget} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
