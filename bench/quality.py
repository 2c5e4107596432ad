"""The quality benchmark: opening a cycle for 10,000 subjects, and warning evaluation over 1,000,000 measurements.

    python -m bench.quality [--db sqlite|postgresql|both] [--subjects 10000] [--measurements 1000000]
                            [--workers 2] [--profile]

For each database it migrates a fresh one (a SQLite file in a temp folder, or the PostgreSQL database
`bench_quality`, dropped and created again), loads the demo organisation, deploys workflows/ and inserts
the subjects (course level) with one bulk statement. Then:

(a) this process creates the course level's cycle (hall.quality.cycles.create_cycle, the first half of
    open_cycle) and starts --workers child processes (`python -m bench.quality --job open-units …`), each
    running one shard of the opening, hall.quality.cycles.open_units(cycle, shard=i, shards=workers) — what
    that many Celery workers do with the shard jobs open_cycle queues (with --workers 1: the one job of the
    embedded, broker-less default). Each child reports its time in the job and its peak resident memory
    (ru_maxrss, which includes the interpreter and the app, ~140 MB before any work); meanwhile this process
    reads Cycle.opened from its own connection and records when 25/50/75/100 % of the units were visible;
(b) it fills the measurements with one INSERT … SELECT (subjects × points × periods; deterministic
    values, ~1 % below the standard line), then times hall.quality.warnings.evaluate_warnings() over all of
    them (start_processes=False: starting one handling process per warning is a separate, per-row cost).

It prints one markdown table; DESIGN §9 holds the budgets. Every loop is bounded; databases and temp
folders are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench

ROOT = Path(__file__).resolve().parent.parent
PG_DB = "bench_quality"
LEVEL = "course"
PERIOD = "2025-2026"
POINTS = 20
JOB_TIMEOUT = 900  # seconds; the child is killed beyond this


# -- setting up --------------------------------------------------------------------------------------

def database_url(kind: str, folder: Path) -> str:
    return bench.database_url(kind, folder, PG_DB if kind == "postgresql" else "bench_quality")


def drop_database(kind: str) -> None:
    bench.drop_database(kind, PG_DB)


def make_app(url: str, folder: Path):
    os.environ.pop("HALL_BROKER_URL", None)  # the opening job runs in the process that opens the cycle
    from hall import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(folder), "SECRET_KEY": "bench-secret",
                       "ATTACHMENT_DIR": str(folder / "attachments"), "BROKER_URL": None})


def prepare(app, subjects: int) -> None:
    """Migrate, load the demo people, deploy the shipped flows, add the levels and *subjects* courses."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from hall.accounts.models import User
    from hall.extensions import db
    from hall.org.demo import load_demo_organisation
    from hall.org.models import OrgUnit
    from hall.processes import services as processes
    from hall.quality import services
    from hall.quality.models import Subject

    with app.app_context():
        upgrade()
        load_demo_organisation()
        processes.deploy_directory(app.config["WORKFLOWS_DIR"], app.config["FORMS_DIR"])
        services.ensure_levels()
        unit = db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == "xxgc-rj"))
        owner = db.session.scalar(sa.select(User.id).where(User.username == "t1001"))
        rows = [dict(level_code=LEVEL, code=f"B{n:06d}", name=f"基准课程{n:06d}", org_unit_id=unit,
                     responsible_user_id=owner, parent_id=None, attributes={}, active=True)
                for n in range(1, subjects + 1)]
        for start in range(0, len(rows), 5000):
            db.session.execute(sa.insert(Subject), rows[start:start + 5000])
        db.session.commit()
        db.session.remove()


# -- (a) opening a cycle -----------------------------------------------------------------------------

def job_open_units(url: str, folder: str, cycle_id: int, shard: int, shards: int, profile: bool = False) -> None:
    """Child process = one worker: run one shard of the opening and print its time and peak memory as JSON."""
    import cProfile
    import pstats

    from hall.quality import cycles

    app = make_app(url, Path(folder))
    with app.app_context():
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        profiler = cProfile.Profile() if profile else None
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        started = cycles.open_units(cycle_id, shard=shard, shards=shards)
        if profiler:
            profiler.disable()
            # BENCH_SORT (default tottime) and BENCH_FILTER (a regex on file:function) shape the listing.
            stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("BENCH_SORT", "tottime"))
            stats.print_stats(os.environ.get("BENCH_FILTER", ""), 30)
        seconds = time.perf_counter() - began
        result = {"seconds": seconds, "started": started, "rss_before_kb": rss_before,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    print(json.dumps(result))


def open_cycle(app, url: str, folder: Path, subjects: int, workers: int, profile: bool = False) -> dict:
    """Create the cycle here (hall.quality.cycles.create_cycle), run its shards in *workers* child processes
    as that many Celery workers would (open_units(cycle, shard=i, shards=workers)), and sample the progress
    from this process."""
    import sqlalchemy as sa

    from hall.accounts.models import User
    from hall.extensions import db
    from hall.quality import cycles

    with app.app_context():
        office = db.session.scalar(sa.select(User).where(User.username == "q4001"))
        cycle, _ = cycles.create_cycle(LEVEL, PERIOD, office)
        cycle_id = cycle.id
        db.session.remove()
    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    command = [sys.executable, "-m", "bench.quality", "--job", "open-units", "--url", url, "--folder", str(folder),
               "--cycle", str(cycle_id), "--shards", str(workers)]
    began = time.perf_counter()
    children = [subprocess.Popen(command + ["--shard", str(shard)] + (["--profile"] if profile and shard == 0 else []),
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for shard in range(workers)]
    marks = {25: None, 50: None, 75: None, 100: None}
    deadline = began + JOB_TIMEOUT
    outputs = []
    try:
        while any(c.poll() is None for c in children) and time.perf_counter() < deadline:
            try:
                with engine.connect() as conn:
                    opened = conn.execute(sa.text("SELECT opened FROM cycles WHERE id = :id"),
                                          {"id": cycle_id}).scalar()
            except sa.exc.OperationalError:
                opened = None  # SQLite: the writer holds the lock for a moment
            if opened is not None:
                now = time.perf_counter() - began
                for percent in marks:
                    if marks[percent] is None and opened >= subjects * percent / 100:
                        marks[percent] = now
            time.sleep(0.1)
        if any(c.poll() is None for c in children):
            for c in children:
                c.kill()
            raise RuntimeError(f"opening the cycle took more than {JOB_TIMEOUT} s")
        wall = time.perf_counter() - began
        outputs = [c.communicate() for c in children]
        with engine.connect() as conn:
            state, opened, total = conn.execute(sa.text("SELECT state, opened, total FROM cycles WHERE id = :id"),
                                                {"id": cycle_id}).one()
    finally:
        engine.dispose()
    for child, (_, err) in zip(children, outputs, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"an opening worker failed:\n{err[-3000:]}")
    jobs = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    result = {"workers": workers, "wall": wall, "seconds": max(j["seconds"] for j in jobs), "state": state,
              "opened": opened, "total": total, "marks": marks,
              "maxrss_kb": max(j["maxrss_kb"] for j in jobs), "rss_before_kb": max(j["rss_before_kb"] for j in jobs)}
    if profile:
        result["profile"] = outputs[0][1][-12000:]
    return result


# -- (b) evaluating warnings -------------------------------------------------------------------------

def fill_measurements(app, subjects: int, measurements: int) -> tuple[int, float]:
    """Points and measurements in set-based SQL; returns (rows, seconds)."""
    import sqlalchemy as sa

    from hall.db_types import UTCDateTime, utcnow
    from hall.extensions import db
    from hall.quality.models import MonitoringPoint

    periods = max(1, math.ceil(measurements / (subjects * POINTS)))
    with app.app_context():
        db.session.execute(sa.insert(MonitoringPoint), [
            dict(level_code=LEVEL, element="基准", code=f"BENCH-{n:02d}", name=f"基准质控点{n:02d}", unit="",
                 direction="higher", target_value=90, standard_value=1.0, warning_value=0.5, source="bench",
                 frequency="学年", is_example=True, note="benchmark")
            for n in range(1, POINTS + 1)])
        db.session.commit()
        period_rows = " UNION ALL ".join(f"SELECT {n} AS n, '{2000 + n}-{2001 + n}' AS period"
                                         for n in range(periods))
        # value = a hash of (subject, point, period) in 0.0 … 99.9: 1 % are below the standard line 1.0.
        statement = sa.text(f"""
            INSERT INTO measurements (subject_id, point_id, period, value, source, measured_at)
            SELECT s.id, p.id, per.period, ((s.id * 7919 + p.id * 104729 + per.n * 31337) % 1000) / 10.0,
                   'bench', :now
            FROM subjects s CROSS JOIN monitoring_points p CROSS JOIN ({period_rows}) per
            WHERE s.level_code = :level AND p.code LIKE 'BENCH-%'
        """).bindparams(sa.bindparam("now", type_=UTCDateTime))
        began = time.perf_counter()
        db.session.execute(statement, {"now": utcnow(), "level": LEVEL})
        db.session.commit()
        seconds = time.perf_counter() - began
        rows = db.session.scalar(sa.text("SELECT count(*) FROM measurements"))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        db.session.remove()
    return rows, seconds


def evaluate(app, profile: bool) -> dict:
    import cProfile
    import io
    import pstats

    from hall.extensions import db
    from hall.quality import warnings

    with app.app_context():
        profiler = cProfile.Profile() if profile else None
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        counts = warnings.evaluate_warnings(start_processes=False)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - began
        began = time.perf_counter()
        again = warnings.evaluate_warnings(start_processes=False)
        seconds_again = time.perf_counter() - began
        db.session.remove()
    result = {"seconds": seconds, "counts": counts, "seconds_again": seconds_again, "again": again}
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
        result["profile"] = out.getvalue()
    return result


# -- running -----------------------------------------------------------------------------------------

def run(kind: str, subjects: int, measurements: int, profile: bool, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        folder = Path(tmp)
        url = database_url(kind, folder)
        try:
            app = make_app(url, folder)
            began = time.perf_counter()
            prepare(app, subjects)
            setup = time.perf_counter() - began
            opening = open_cycle(app, url, folder, subjects, workers, profile)
            rows, fill_seconds, evaluation = 0, 0.0, None
            if measurements:
                rows, fill_seconds = fill_measurements(app, subjects, measurements)
                evaluation = evaluate(app, profile)
            with app.app_context():
                from hall.extensions import db

                db.engine.dispose()
        finally:
            drop_database(kind)
    return {"setup": setup, "opening": opening, "rows": rows, "fill": fill_seconds, "evaluation": evaluation}


def table(results: dict[str, dict], subjects: int) -> str:
    kinds = list(results)
    lines = ["| measure | budget | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]

    def row(name, budget, fn):
        lines.append(f"| {name} | {budget} | " + " | ".join(fn(results[k]) for k in kinds) + " |")

    def mark(r, percent):
        value = r["opening"]["marks"][percent]
        return "—" if value is None else f"{value:.1f} s"

    workers = results[kinds[0]]["opening"]["workers"]
    row(f"open a cycle for {subjects:,} subjects: the longest of {workers} shard job(s), each in its own process",
        "≤ 30 s (PostgreSQL)",
        lambda r: f"{r['opening']['seconds']:.1f} s ({r['opening']['state']}, {r['opening']['opened']:,} units)")
    row("subjects/s", "≥ 333", lambda r: f"{r['opening']['opened'] / r['opening']['seconds']:.0f}")
    row("wall time from starting the worker processes to the last one exiting (includes their ~3 s start-up)", "",
        lambda r: f"{r['opening']['wall']:.1f} s")
    row("job peak memory (largest ru_maxrss of the worker processes)", "≤ 500 MB",
        lambda r: f"{r['opening']['maxrss_kb'] / 1024:.0f} MB ({r['opening']['rss_before_kb'] / 1024:.0f} MB "
                  f"before opening)")
    for percent in (25, 50, 75, 100):
        row(f"progress read from another connection: {percent} % opened (since the workers started)", "",
            lambda r, p=percent: mark(r, p))
    if all(results[k]["evaluation"] for k in kinds):
        row("measurements generated (one INSERT … SELECT)", "",
            lambda r: f"{r['rows']:,} in {r['fill']:.1f} s")
        row("evaluate warnings over all measurements", "≤ 10 s (PostgreSQL)",
            lambda r: f"{r['evaluation']['seconds']:.2f} s")
        row("warnings raised", "", lambda r: f"{r['evaluation']['counts']['raised']:,}")
        row("evaluate again (nothing new)", "",
            lambda r: f"{r['evaluation']['seconds_again']:.2f} s, {r['evaluation']['again']['raised']} raised")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--measurements", type=int, default=1_000_000, help="0 skips the warning evaluation")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes opening the cycle, one shard each (as many Celery workers would)")
    parser.add_argument("--profile", action="store_true",
                        help="print cProfiles of the first opening worker and the warning evaluation")
    parser.add_argument("--job", choices=("open-units",), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--cycle", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shard", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job == "open-units":
        job_open_units(args.url, args.folder, args.cycle, args.shard, args.shards, args.profile)
        return 0
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    load_before = os.getloadavg()[0]
    results = {}
    for kind in kinds:
        began = time.monotonic()
        print(f"… {kind}", file=sys.stderr, flush=True)
        results[kind] = run(kind, args.subjects, args.measurements, args.profile, max(1, args.workers))
        print(f"  {kind} done in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        if args.profile:
            print(results[kind]["opening"].get("profile", ""), file=sys.stderr)
            if results[kind]["evaluation"]:
                print(results[kind]["evaluation"]["profile"], file=sys.stderr)
    print(f"Quality Hall quality benchmark — {platform.node()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(table(results, args.subjects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
