"""Driver-level execution for the few statements on the hot paths of a task submit and an instance start
(PostgreSQL).

SQLAlchemy spends about 0.25 ms of CPU per statement around the driver on the benchmark VM (an execution
context, a result object and its column map of ~30 columns, row objects), more than psycopg spends
running the statement. The submit's read and write (hall.tasks.services._load_for_action,
hall.processes.services._one_statement) and the start's write therefore go to a driver cursor: of the
session's own connection (same transaction or autocommit state, same prepared statements), or, while a
submit holds one (`direct`), of a pooled connection in autocommit mode that the ORM session never sees.

They still reach the engine's `before_cursor_execute` / `after_cursor_execute` listeners, so what counts
or inspects statements (the statement-count tests, the benchmark, hall/transactions.py's write marker)
sees them as it sees any other.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

from hall import transactions
from hall.extensions import db

# The pooled connection a submit reads and writes on, while it holds one (see `direct`).
_direct: ContextVar = ContextVar("hall_direct_connection", default=None)


class _Direct:
    """What the cursor listeners are given for a statement on a direct connection: the pooled connection's
    `info` (as a Connection of the same pooled connection would give) and nothing else."""

    __slots__ = ("pooled", "info")

    def __init__(self, pooled):
        self.pooled = pooled
        self.info = pooled.info


@contextlib.contextmanager
def direct():
    """A pooled connection in autocommit mode for this block's `execute` calls: each statement is its own
    transaction, with no BEGIN or COMMIT to wait for and no ORM session around it (checking a connection out
    through the session and committing it cost ~0.2 ms of a submit). The connection goes back to the pool at
    the end, in its usual mode, with nothing open on it."""
    engine = db.engine
    pooled = engine.raw_connection()
    token, lost = None, False
    try:
        pooled.driver_connection.autocommit = True
        token = _direct.set(_Direct(pooled))
        yield
    except engine.dialect.loaded_dbapi.Error as err:
        # The server went away (restarted, or the connection was cut): as SQLAlchemy does when a session's
        # connection is lost, drop this connection and every other one pooled before it, so one request
        # fails, not one per stale pooled connection.
        lost = engine.dialect.is_disconnect(err, pooled.driver_connection, None)
        raise
    finally:
        if token is not None:
            _direct.reset(token)
        pooled.info.pop(transactions.WROTE, None)  # an autocommit statement left nothing to roll back
        if not lost:
            try:
                pooled.driver_connection.autocommit = False
            except engine.dialect.loaded_dbapi.Error:
                lost = True
        if lost:
            pooled.invalidate()
            pooled.close()
            engine.dispose()
        else:
            pooled.close()


def leave_direct() -> None:
    """Send this context's further `execute` calls to the session again (the direct connection stays
    checked out until its block ends)."""
    _direct.set(None)


def in_direct() -> bool:
    return _direct.get() is not None


def execute(sql: str, params: dict):
    """Run *sql* (the driver's paramstyle: `%(name)s`) on the direct connection, if this context holds one,
    or the session's; returns the cursor."""
    held = _direct.get()
    if held is not None:
        connection, dispatch = held, db.engine.dispatch
        cursor = held.pooled.driver_connection.cursor()
    else:
        connection = db.session.connection()
        dispatch = connection.dispatch
        cursor = connection.connection.dbapi_connection.cursor()
    if dispatch.before_cursor_execute:
        dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
    cursor.execute(sql, params)
    if dispatch.after_cursor_execute:
        dispatch.after_cursor_execute(connection, cursor, sql, params, None, False)
    return cursor
