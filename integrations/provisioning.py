"""First sign-in creates the user from the identity's attributes, later sign-ins update it.

The mapping is configurable (HALL_SSO_ATTRIBUTE_MAP for CAS attributes, HALL_OIDC_CLAIM_MAP for OIDC
claims): each hall field lists the attribute names to try, first present wins (roles: all of them).
    username  工号/学号 (the CAS principal when no listed attribute is present)
    name      姓名
    email
    org_unit  部门: the code of an org unit that already exists
    roles     groups: mapped by HALL_SSO_ROLE_MAP {group: role code}; a group named like a role code or
              a role's Chinese name (教师, 部门负责人, ...) maps to that role; other groups are ignored.
Roles listed in HALL_SSO_UNIT_ROLES are held in the user's org unit, the others college-wide. Sign-on
adds roles, it never removes one (local grants stay).
"""

from __future__ import annotations

import logging
import secrets

import sqlalchemy as sa

from hall.accounts import services as accounts
from hall.accounts.models import BUILTIN_ROLES, User
from hall.extensions import db
from hall.org.models import Membership, OrgUnit
from integrations import SignOnRefused, json_setting, setting
from integrations.models import SsoSession

log = logging.getLogger(__name__)

DEFAULT_ATTRIBUTE_MAP = {
    "username": ["employeeNumber", "studentNumber", "工号", "学号", "uid"],
    "name": ["displayName", "cn", "name", "姓名"],
    "email": ["mail", "email", "邮箱"],
    "org_unit": ["department", "deptCode", "ou", "部门"],
    "roles": ["groups", "memberOf", "roles", "角色"],
}
DEFAULT_CLAIM_MAP = {
    "username": ["employee_number", "student_number", "preferred_username", "工号", "学号"],
    "name": ["name", "姓名"],
    "email": ["email"],
    "org_unit": ["department", "部门"],
    "roles": ["groups", "roles", "角色"],
}
DEFAULT_UNIT_ROLES = "dept_head,program_leader,course_leader,teacher,student,counsellor"


def _values(identity: dict, names: list[str]) -> list[str]:
    found = []
    for name in names:
        value = identity.get(name)
        if value in (None, "", []):
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            item = str(item).strip()
            if item:
                found.append(item)
    return found


def _first(identity: dict, names: list[str]) -> str | None:
    values = _values(identity, names)
    return values[0] if values else None


def role_codes(groups: list[str]) -> list[str]:
    """Role codes for the identity's groups, in order, without duplicates."""
    role_map = json_setting("SSO_ROLE_MAP", {})
    by_name = {name: code for code, name in BUILTIN_ROLES.items()}
    codes = []
    for group in groups:
        code = role_map.get(group) or (group if group in BUILTIN_ROLES else by_name.get(group))
        if code is None:
            log.info("sign-on group %r maps to no role; ignored", group)
        elif code not in codes:
            codes.append(code)
    return codes


def provision(identity: dict, mapping: dict, principal: str | None = None) -> User:
    """Create or update the user the identity describes (flushed, not committed)."""
    username = _first(identity, mapping.get("username", [])) or principal
    if not username:
        raise SignOnRefused("identity carries no username (工号/学号)", "统一身份认证未提供工号或学号")
    name = _first(identity, mapping.get("name", [])) or username
    email = _first(identity, mapping.get("email", []))
    unit_code = _first(identity, mapping.get("org_unit", []))
    unit_id = None
    if unit_code:
        unit_id = db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == unit_code))
        if unit_id is None:
            log.warning("sign-on org unit %r of %s is unknown; left unset", unit_code, username)
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        if str(setting("SSO_CREATE_USERS", "1")) in ("0", "false", "False"):
            raise SignOnRefused(f"unknown user {username} and SSO_CREATE_USERS is off", "您在本系统中没有账号")
        user = accounts.create_user(username, name, email=email, org_unit_id=unit_id, commit=False)
        log.info("sign-on created user %s", username)
    elif not user.active:
        raise SignOnRefused(f"user {username} is disabled", "账号已停用")
    else:
        user.name = name
        if email:
            user.email = email
        if unit_id is not None:
            user.org_unit_id = unit_id
    unit_roles = {r.strip() for r in str(setting("SSO_UNIT_ROLES", DEFAULT_UNIT_ROLES)).split(",") if r.strip()}
    held = {(m.role_code, m.org_unit_id) for m in db.session.scalars(
        sa.select(Membership).where(Membership.user_id == user.id))}
    for code in role_codes(_values(identity, mapping.get("roles", []))):
        scope = user.org_unit_id if code in unit_roles else None
        if (code, scope) not in held:
            accounts.grant_role(user, code, scope)
    db.session.flush()
    return user


def open_session(identity: dict, mapping: dict, provider: str, external_id: str | None,
                 principal: str | None = None, id_token: str | None = None) -> tuple[User, str]:
    """Provision the user and record the sign-on session; commits. Returns (user, session key)."""
    try:
        user = provision(identity, mapping, principal)
        key = secrets.token_urlsafe(32)
        db.session.add(SsoSession(key=key, user_id=user.id, provider=provider, external_id=external_id,
                                  id_token=id_token))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    db.session.refresh(user)
    return user, key


def end_sessions(provider: str, external_id: str) -> int:
    """Mark the sessions that *external_id* opened as ended (single logout); commits; returns how many."""
    from hall.db_types import utcnow

    result = db.session.execute(sa.update(SsoSession).where(
        SsoSession.provider == provider, SsoSession.external_id == external_id,
        SsoSession.ended_at.is_(None)).values(ended_at=utcnow()))
    db.session.commit()
    return result.rowcount


def end_session_key(key: str) -> SsoSession | None:
    from hall.db_types import utcnow

    row = db.session.scalar(sa.select(SsoSession).where(SsoSession.key == key))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        db.session.commit()
    return row


def session_alive(key: str) -> bool:
    ended = db.session.execute(sa.select(SsoSession.ended_at).where(SsoSession.key == key)).first()
    return ended is not None and ended[0] is None
