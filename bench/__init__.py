"""Benchmarks of the hall, run as modules: `python -m bench.spine` (docs/performance.md) and
`python -m bench.quality` (docs/quality-performance.md). Shared here: the throw-away databases they use."""

from __future__ import annotations

import os
from pathlib import Path

PG_ADMIN_URL = os.environ.get("HALL_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(kind: str, folder: Path, name: str) -> str:
    """A fresh database for a run: a SQLite file in *folder*, or PostgreSQL database *name*, recreated."""
    if kind == "sqlite":
        return f"sqlite:///{folder / (name + '.db')}"
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_database(kind: str, name: str) -> None:
    if kind == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
