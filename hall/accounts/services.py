"""Sign-in with local accounts and account management."""

from __future__ import annotations

import re

import sqlalchemy as sa

from hall.accounts.models import BUILTIN_ROLES, Role, User
from hall.audit import services as audit
from hall.errors import HallError, Invalid
from hall.extensions import db
from hall.org.models import Membership, OrgUnit


def authenticate(username: str, password: str) -> User:
    """The user with this name and password. A deactivated account is named as such only to someone who
    knows its password, so the answer never tells which usernames exist."""
    user = db.session.scalar(sa.select(User).where(User.username == (username or "").strip()))
    if user is None or not user.check_password(password or ""):
        raise HallError("用户名或密码错误", code=401)
    if not user.active:
        raise HallError("账号已停用，请联系管理员", code=403)
    return user


# 工号 / 学号 style: letters and digits, with . _ - inside; no spaces, markup or other characters.
USERNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")
# A mailbox shape: local part, @, a domain with at least one dot; no spaces or a second @.
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
# A mainland mobile number, or a landline with an optional area code and extension.
PHONE_RE = re.compile(r"1[3-9]\d{9}|(?:0\d{2,3}-?)?\d{7,8}(?:-\d{1,6})?")
PASSWORD_MIN = 8


def user_field_errors(*, username: str | None = None, name: str | None = None, email: str | None = None,
                      phone: str | None = None, password: str | None = None, check: tuple = ()) -> dict:
    """Field-level messages (Chinese) for the account fields named in *check*; empty when all are fine."""
    errors: dict[str, list[str]] = {}
    if "username" in check:
        if not username:
            errors["username"] = ["请填写工号/学号"]
        elif not USERNAME_RE.fullmatch(username):
            errors["username"] = ["工号/学号只能包含字母、数字和 . _ -（不含空格），最长 64 位"]
    if "name" in check:
        if not name:
            errors["name"] = ["请填写姓名"]
        elif len(name) > 100 or "<" in name or ">" in name:
            errors["name"] = ["姓名最长 100 个字，且不能包含 < >"]
    if "email" in check and email and (len(email) > 200 or not EMAIL_RE.fullmatch(email)):
        errors["email"] = ["邮箱格式不正确，例如 name@example.edu.cn"]
    if "phone" in check and phone and not PHONE_RE.fullmatch(phone):
        errors["phone"] = ["电话格式不正确：手机号 11 位，或座机如 0571-88886666"]
    if "password" in check and len(password or "") < PASSWORD_MIN:
        errors["password"] = [f"密码至少 {PASSWORD_MIN} 位"]
    return errors


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def ensure_roles() -> None:
    existing = set(db.session.scalars(sa.select(Role.code)))
    for code, name in BUILTIN_ROLES.items():
        if code not in existing:
            db.session.add(Role(code=code, name=name))
    db.session.flush()


def create_user(username: str, name: str, password: str | None = None, email: str | None = None,
                org_unit_id: int | None = None, roles: list[tuple[str, int | None]] | None = None,
                commit: bool = True, phone: str | None = None) -> User:
    """Create a user; `roles` are (role code, org unit id or None for college-wide)."""
    if not username or not name:
        raise Invalid("用户名和姓名不能为空")
    if db.session.scalar(sa.select(User.id).where(User.username == username)):
        raise HallError(f"用户 {username} 已存在", code=409, errors={"username": [f"用户 {username} 已存在"]})
    user = User(username=username, name=name, email=email, phone=phone, org_unit_id=org_unit_id)
    if password:
        user.set_password(password)
    db.session.add(user)
    db.session.flush()
    for role, unit in roles or []:
        grant_role(user, role, unit)
    if commit:
        db.session.commit()
    return user


def register_user(actor: User, username: str, name: str, password: str, email: str | None = None,
                  phone: str | None = None, org_unit_id: int | None = None,
                  roles: list[tuple[str, int | None]] | None = None) -> User:
    """An administrator creates an account: every field validated (422 naming the fields), audit-logged."""
    username, name, email, phone = (username or "").strip(), (name or "").strip(), _clean(email), _clean(phone)
    errors = user_field_errors(username=username, name=name, email=email, phone=phone, password=password,
                               check=("username", "name", "email", "phone", "password"))
    unknown = sorted({role for role, _ in roles or []} - set(db.session.scalars(sa.select(Role.code))))
    if unknown:
        errors["roles"] = [f"角色 {', '.join(unknown)} 不存在"]
    if org_unit_id is not None and db.session.get(OrgUnit, org_unit_id) is None:
        errors["org_unit_id"] = ["单位不存在"]
    if errors:
        raise Invalid("填写有误，请检查标出的字段", errors=errors)
    user = create_user(username, name, password, email, org_unit_id=org_unit_id, roles=roles, phone=phone)
    audit.record("user_created", actor.username, username=user.username, roles=sorted(user.role_codes))
    return user


def update_user(actor: User, user_id: int, *, name: str | None = None, email: str | None = None,
                phone: str | None = None, active: bool | None = None, fields: tuple = ()) -> User:
    """An administrator edits the *fields* named (name, email, phone, active) of an account; audit-logged."""
    user = _user_or_404(user_id)
    values = {"name": (name or "").strip(), "email": _clean(email), "phone": _clean(phone), "active": active}
    errors = user_field_errors(**{k: values[k] for k in ("name", "email", "phone")},
                               check=tuple(f for f in fields if f != "active"))
    if "active" in fields and active is False and user.id == actor.id:
        errors["active"] = ["不能停用自己的账号"]
    if errors:
        raise Invalid("填写有误，请检查标出的字段", errors=errors)
    changed = {f: values[f] for f in fields if getattr(user, f) != values[f]}
    for field, value in changed.items():
        setattr(user, field, value)
    db.session.commit()
    if changed:
        audit.record("user_updated", actor.username, username=user.username, fields=sorted(changed))
    return user


def reset_password(actor: User, user_id: int, password: str) -> User:
    """An administrator sets a new password for an account (validated as at creation); audit-logged."""
    user = _user_or_404(user_id)
    errors = user_field_errors(password=password, check=("password",))
    if errors:
        raise Invalid("新密码不符合要求", errors=errors)
    user.set_password(password)
    db.session.commit()
    audit.record("user_password_reset", actor.username, username=user.username)
    return user


def add_membership(actor: User, user_id: int, role: str, org_unit_id: int | None = None) -> Membership:
    """An administrator gives a person a role, college-wide or in a unit; audit-logged."""
    user = _user_or_404(user_id)
    errors = {}
    if not role or db.session.get(Role, role) is None:
        errors["role"] = ["请选择已有的角色"]
    if org_unit_id is not None and db.session.get(OrgUnit, org_unit_id) is None:
        errors["unit"] = ["单位不存在"]
    if errors:
        raise Invalid("填写有误，请检查标出的字段", errors=errors)
    if any(m.role_code == role and m.org_unit_id == org_unit_id for m in user.memberships):
        raise Invalid("此人已有这个角色", errors={"role": ["此人已有这个角色"]})
    membership = grant_role(user, role, org_unit_id)
    db.session.commit()
    audit.record("user_updated", actor.username, username=user.username, fields=["roles"],
                 granted={"role": role, "org_unit_id": org_unit_id})
    return membership


def remove_membership(actor: User, user_id: int, membership_id: int) -> User:
    """An administrator takes a role away; nobody removes their own administrator role (no lock-out)."""
    user = _user_or_404(user_id)
    membership = next((m for m in user.memberships if m.id == membership_id), None)
    if membership is None:
        raise HallError("此角色不存在", code=404)
    if user.id == actor.id and membership.role_code == "admin":
        raise HallError("不能移除自己的系统管理员角色", code=409)
    revoked = {"role": membership.role_code, "org_unit_id": membership.org_unit_id}
    db.session.delete(membership)
    db.session.commit()
    db.session.refresh(user)
    audit.record("user_updated", actor.username, username=user.username, fields=["roles"], revoked=revoked)
    return user


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise HallError("用户不存在", code=404)
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


def set_user_active(user_id: int, active: bool, actor: User | None = None) -> User:
    """Deactivate (or reactivate) an account; a deactivated user can no longer sign in."""
    user = _user_or_404(user_id)
    user.active = active
    db.session.commit()
    if actor is not None:
        audit.record("user_updated", actor.username, username=user.username, fields=["active"], active=active)
    return user


# Roles that do not make a person staff: a student may not be handed (转办) or asked to sign (加签) a task.
NON_STAFF_ROLES = frozenset({"student"})


def _staff_clause():
    """SQL: the user holds at least one role other than the non-staff ones."""
    return sa.exists().where(Membership.user_id == User.id, Membership.role_code.not_in(NON_STAFF_ROLES))


def is_staff(user: User) -> bool:
    """Whether *user* holds a role other than the non-staff ones (a student does not)."""
    return bool(user.role_codes - NON_STAFF_ROLES)


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
    if not is_staff(target):
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
