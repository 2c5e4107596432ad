"""Sign-in with local accounts and account management."""

from __future__ import annotations

import sqlalchemy as sa

from hall.accounts.models import BUILTIN_ROLES, Role, User
from hall.errors import HallError, Invalid
from hall.extensions import db
from hall.org.models import Membership


def authenticate(username: str, password: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.username == (username or "").strip()))
    if user is None or not user.active or not user.check_password(password or ""):
        raise HallError("用户名或密码错误", code=401)
    return user


def ensure_roles() -> None:
    existing = set(db.session.scalars(sa.select(Role.code)))
    for code, name in BUILTIN_ROLES.items():
        if code not in existing:
            db.session.add(Role(code=code, name=name))
    db.session.flush()


def create_user(username: str, name: str, password: str | None = None, email: str | None = None,
                org_unit_id: int | None = None, roles: list[tuple[str, int | None]] | None = None,
                commit: bool = True) -> User:
    """Create a user; `roles` are (role code, org unit id or None for college-wide)."""
    if not username or not name:
        raise Invalid("用户名和姓名不能为空")
    if db.session.scalar(sa.select(User.id).where(User.username == username)):
        raise HallError(f"用户 {username} 已存在", code=409)
    user = User(username=username, name=name, email=email, org_unit_id=org_unit_id)
    if password:
        user.set_password(password)
    db.session.add(user)
    db.session.flush()
    for role, unit in roles or []:
        grant_role(user, role, unit)
    if commit:
        db.session.commit()
    return user


def grant_role(user: User, role: str, org_unit_id: int | None = None) -> Membership:
    if db.session.get(Role, role) is None:
        db.session.add(Role(code=role, name=BUILTIN_ROLES.get(role, role)))
        db.session.flush()
    membership = Membership(user_id=user.id, role_code=role, org_unit_id=org_unit_id)
    db.session.add(membership)
    db.session.flush()
    return membership


def get_user(username: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.username == username))


def list_users(page: int = 1, q: str | None = None, page_size: int = 20) -> tuple[list[User], int]:
    """A page of users, by username, matching *q* in username or name; with the total."""
    query = sa.select(User)
    if q:
        pattern = f"%{q.strip()}%"
        query = query.where(sa.or_(User.username.ilike(pattern), User.name.ilike(pattern)))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(User.username).limit(page_size).offset((max(page, 1) - 1) * page_size))
    return list(items), total


def set_user_active(user_id: int, active: bool) -> User:
    """Deactivate (or reactivate) an account; a deactivated user can no longer sign in."""
    user = db.session.get(User, user_id)
    if user is None:
        raise HallError("用户不存在", code=404)
    user.active = active
    db.session.commit()
    return user


# Roles that do not make a person staff: a student may not be handed (转办) or asked to sign (加签) a task.
NON_STAFF_ROLES = frozenset({"student"})


def _staff_clause():
    """SQL: the user holds at least one role other than the non-staff ones."""
    return sa.exists().where(Membership.user_id == User.id, Membership.role_code.not_in(NON_STAFF_ROLES))


def delegate_for(username: str, actor: User, field: str = "username", verb: str = "转办") -> User:
    """The person *actor* may hand a task to (转办 or 加签): an existing, active staff member other than *actor*;
    otherwise 422 on *field* saying why."""
    username = (username or "").strip()
    if not username:
        raise Invalid(f"请填写{verb}对象的工号", errors={field: ["必填"]})
    target = get_user(username)
    if target is None:
        raise Invalid(f"用户 {username} 不存在", errors={field: ["用户不存在"]})
    if target.id == actor.id:
        message = "不能给自己加签" if verb == "加签" else f"不能{verb}给自己"
        raise Invalid(message, errors={field: [message]})
    if not target.active:
        message = f"{target.name}（{username}）的账号已停用，不能{verb}"
        raise Invalid(message, errors={field: [message]})
    if not (target.role_codes - NON_STAFF_ROLES):
        message = f"{target.name}（{username}）不是教职工，只能{verb}给在职教职工"
        raise Invalid(message, errors={field: [message]})
    return target


def list_delegates(actor: User, q: str | None = None, limit: int = 20) -> list[User]:
    """The people *actor* may hand a task to, matching *q* in username or name: active staff, not *actor*."""
    query = sa.select(User).where(User.active.is_(True), User.id != actor.id, _staff_clause())
    if q and q.strip():
        pattern = f"%{q.strip()}%"
        query = query.where(sa.or_(User.username.ilike(pattern), User.name.ilike(pattern)))
    return list(db.session.scalars(query.order_by(User.username).limit(limit)))


def list_roles() -> list[Role]:
    return list(db.session.scalars(sa.select(Role).order_by(Role.code)))


def create_role(code: str, name: str) -> Role:
    """A new role (group) that lanes and candidateGroups can name by its code."""
    code, name = (code or "").strip(), (name or "").strip()
    if not code or not name:
        raise Invalid("角色编码和名称不能为空", errors={"code" if not code else "name": ["必填"]})
    if not all(ch.isalnum() or ch == "_" for ch in code) or not code.isascii():
        raise Invalid("角色编码只能包含字母、数字和下划线", errors={"code": ["只能包含字母、数字和下划线"]})
    if db.session.get(Role, code) is not None:
        raise HallError(f"角色 {code} 已存在", code=409)
    role = Role(code=code, name=name)
    db.session.add(role)
    db.session.commit()
    return role
