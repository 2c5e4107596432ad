"""The signed-in user of a request, without a query on most requests.

Every request of a signed-in session needs its user; loading that row through the ORM is the largest fixed
cost of a small request (a task submit among them), the more so on PostgreSQL where it is also the first
round trip. This cache keeps, per app server process, a detached copy of each recently seen user's row and
hands every request its own session-bound copy of it (`Session.merge(load=False)`: no SELECT). Relationships
are not cached: memberships and the org unit load from the database when a request reads them, so role
checks always see the current roles.

Freshness: an entry is used for at most `USER_CACHE_SECONDS` (HALL_USER_CACHE_SECONDS, default 5; 0 turns the
cache off). A change to a user written through the ORM in this process drops its entry at once; another app
server process sees the change (a deactivation, a new name) when its entry expires. A deactivated user is
treated as signed out.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, lazyload, make_transient_to_detached

from hall.accounts.models import User
from hall.extensions import db


@functools.cache
def _columns() -> tuple[str, ...]:
    return tuple(column.key for column in sa.inspect(User).column_attrs)


@functools.cache
def _user_by_id():
    """Built once (mappers configured): it runs on every request that misses the cache. Memberships load on
    first use only."""
    return sa.select(User).where(User.id == sa.bindparam("user_id")).options(lazyload(User.memberships))


class UserCache:
    """Detached snapshots of user rows by id, each with the monotonic time it was read."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._entries: dict[int, tuple[User, float]] = {}
        self._lock = threading.Lock()
        _ALL.add(self)

    def load(self, user_id: int) -> User | None:
        """The active user *user_id* bound to this request's session, or None (unknown or deactivated)."""
        entry = self._entries.get(user_id)
        if entry is not None and time.monotonic() - entry[1] < self.seconds:
            return db.session.merge(entry[0], load=False)
        read_at = time.monotonic()
        user = db.session.execute(_user_by_id(), {"user_id": user_id}).scalar_one_or_none()
        if user is None or not user.active:
            self.forget(user_id)
            return None
        if self.seconds > 0:
            snapshot = User(**{key: getattr(user, key) for key in _columns()})
            make_transient_to_detached(snapshot)
            with self._lock:
                self._entries[user_id] = (snapshot, read_at)
        return user

    def forget(self, user_id: int | None = None) -> None:
        """Drop one user's entry, or every entry."""
        with self._lock:
            if user_id is None:
                self._entries.clear()
            else:
                self._entries.pop(user_id, None)


_ALL: weakref.WeakSet[UserCache] = weakref.WeakSet()


def forget_everything() -> None:
    """Empty every app's cache in this process: for a database whose rows were deleted wholesale and whose
    ids start again (the test suite between two tests), so an id can name another person."""
    for cache in list(_ALL):
        cache.forget()


def init_app(app) -> None:
    seconds = float(app.config.setdefault("USER_CACHE_SECONDS", 5))
    app.extensions["hall.user_cache"] = UserCache(seconds)


def load_user(user_id: int) -> User | None:
    return current_app.extensions["hall.user_cache"].load(user_id)


def forget_user(user_id: int | None = None) -> None:
    cache = current_app.extensions.get("hall.user_cache")
    if cache is not None:
        cache.forget(user_id)


@event.listens_for(Session, "after_flush")
def _forget_changed_users(session, _flush_context) -> None:
    changed = [obj.id for obj in (*session.dirty, *session.deleted) if isinstance(obj, User)]
    if changed and current_app:
        for user_id in changed:
            forget_user(user_id)
