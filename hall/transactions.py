"""How a request's database transactions begin and end, on PostgreSQL.

psycopg prepares a statement on the server once it has run five times on a connection (PostgreSQL then
skips parsing and, mostly, planning it), but it forgets every prepared statement at each ROLLBACK (and
sends DEALLOCATE ALL): a statement prepared in a transaction that is rolled back would be gone. Flask-SQLAlchemy
ends each request by closing the session, which rolls back whatever transaction is open, so every page and
API read ends with a ROLLBACK and the next request parses and plans its statements again (a task submit's
two statements spend ~1 ms of PostgreSQL's time on that on the benchmark machine).

Here a request whose transaction only read ends with COMMIT instead (for a transaction that wrote nothing
the two are the same to PostgreSQL, and neither waits for the disk). A transaction counts as having written
as soon as its connection ran anything that is not a SELECT; it is then left to roll back as before, as is
any request that ended with an exception or left unflushed ORM changes behind.

A task submit reads once and writes once, and its write is one statement that checks what it read (see
hall.processes.services._one_statement): it runs on an autocommit connection, so there is no BEGIN and no
COMMIT to wait for, the statement being its own transaction: a pooled connection outside the session
(hall.rawsql.direct). An instance start does the same on the session's connection (`begin_autocommit`). A
path that needs more than one write statement first goes back to a plain transaction (`leave_autocommit`,
hall.rawsql.leave_direct).
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from hall.extensions import db

WROTE = "hall_wrote"


def init_app(app: Flask) -> None:
    # On SQLite, whose statement cache outlives a rollback, this changes nothing but is kept the same.
    with app.app_context():
        engine = db.engine
    if not event.contains(engine, "before_cursor_execute", _note_write):
        event.listen(engine, "before_cursor_execute", _note_write)
        event.listen(engine, "commit", _forget_write)
        event.listen(engine, "rollback", _forget_write)
    # Runs before Flask-SQLAlchemy's own teardown (teardowns run in reverse order of registration).
    app.teardown_appcontext(_end_read_only)


def _note_write(conn, _cursor, statement: str, _parameters, _context, _executemany) -> None:
    if not statement.lstrip()[:6].upper() == "SELECT":
        conn.info[WROTE] = True


def _forget_write(conn) -> None:
    conn.info.pop(WROTE, None)


def _end_read_only(exc: BaseException | None) -> None:
    if exc is not None or not db.session.registry.has():
        return
    session = db.session()
    if session.new or session.dirty or session.deleted:
        return
    connection = _connection_in_use(session)
    if connection is None or connection.info.get(WROTE) or connection.in_nested_transaction():
        return  # nothing read (no connection to give back), or left to roll back
    commit_keeping_loaded()  # what was read stays readable (an app context may hand its objects out)


def _connection_in_use(session):
    """The connection the session's transaction already holds, or None: asking the session for one would
    check one out of the pool (a request served from caches never needs one)."""
    transaction = session.get_transaction()
    connections = transaction._connections if transaction is not None else {}
    return next((entry[0] for entry in connections.values()), None)


def untouched() -> bool:
    """Whether this request's session has not used the database yet (no connection checked out)."""
    return _connection_in_use(db.session()) is None


def holds_work() -> bool:
    """Whether the session has something to commit: changes not yet written, or a transaction holding a
    connection (a session transaction without one has nothing in the database to end)."""
    session = db.session()
    return bool(session.new or session.dirty or session.deleted or _connection_in_use(session) is not None)


def begin_autocommit() -> bool:
    """Give this request's session an autocommit connection if it has not used the database yet (PostgreSQL
    only); True when it did. Every statement then commits on its own: only for work that reads, then writes
    once with a statement that checks what was read."""
    session = db.session()
    if session.get_bind().dialect.name != "postgresql":
        return False
    if _connection_in_use(session) is not None:  # already reading in a plain transaction
        return False
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return True


def leave_autocommit() -> None:
    """End the autocommit connection of `begin_autocommit` (nothing to commit: it kept what was loaded); the
    next statement gets a plain transaction."""
    commit_keeping_loaded()


def commit_keeping_loaded() -> None:
    """Commit without expiring what this request loaded and wrote: the response is built from it, and
    reloading the instance, its task, definition, version and the user would cost a statement each."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True
