"""Driver-level execution for the few statements on the task submit's hot path (PostgreSQL).

SQLAlchemy spends about 0.25 ms of CPU per statement around the driver on the benchmark VM (an execution
context, a result object and its column map of ~30 columns, row objects), more than psycopg spends
running the statement. The submit's read and write (hall.tasks.services._load_for_action,
hall.processes.services._one_statement) therefore go to the driver's cursor of the session's own
connection: same connection, same transaction or autocommit state, same prepared statements.

They still reach the engine's `before_cursor_execute` / `after_cursor_execute` listeners, so what counts
or inspects statements (the statement-count tests, the benchmark, hall/transactions.py's write marker)
sees them as it sees any other.
"""

from __future__ import annotations

from hall.extensions import db


def execute(sql: str, params: dict):
    """Run *sql* (the driver's paramstyle: `%(name)s`) on the session's connection; returns the cursor."""
    connection = db.session.connection()
    cursor = connection.connection.dbapi_connection.cursor()
    dispatch = connection.dispatch
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
    cursor.execute(sql, params)
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(connection, cursor, sql, params, None, False)
    return cursor
