"""User accounts through the API: administrators create, edit and reset passwords; bad fields are 422."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hall.accounts.models import User
from hall.audit.models import AuditEvent
from hall.extensions import db
from tests.conftest import Api


@pytest.fixture
def admin(demo, app):
    return Api(app).login("admin")


def _count(username: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.username == username))


def test_create_refuses_bad_username_email_and_phone_naming_each_field(admin):
    """username 「<b>x</b> 空格」, email not-an-email and phone abc are one 422 with a message per field; no user."""
    response = admin.post("users", {"username": "<b>x</b> 空格", "name": "某人", "password": "hall2026!",
                                    "email": "not-an-email", "phone": "abc"})
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert set(errors) == {"username", "email", "phone"}
    assert "字母、数字" in errors["username"][0] and "邮箱格式不正确" in errors["email"][0]
    assert _count("<b>x</b> 空格") == 0


def test_create_with_good_fields_makes_an_audited_staff_account(admin):
    """A valid account is created with its role, and the creation is in the audit log."""
    response = admin.post("users", {"username": "t1999", "name": "新老师", "password": "hall2026!",
                                    "email": "new.teacher@college.edu.cn", "phone": "13800138000",
                                    "roles": [{"role": "teacher"}]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["roles"] == ["teacher"] and response.get_json()["phone"] == "13800138000"
    assert db.session.scalar(sa.select(AuditEvent.actor).where(AuditEvent.kind == "user_created")) == "admin"


def test_create_with_an_unknown_role_or_short_password_is_422(admin):
    """An unknown role code and a 5-character password are refused on their fields; no user is made."""
    response = admin.post("users", {"username": "t1998", "name": "某人", "password": "short",
                                    "roles": [{"role": "nosuchrole"}]})
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"password", "roles"}
    assert _count("t1998") == 0


def test_patch_edits_only_the_given_fields_and_refuses_a_bad_email(admin):
    """PATCH with a bad email is 422 and changes nothing; PATCH with a phone changes only the phone."""
    user = db.session.scalar(sa.select(User).where(User.username == "t1002"))
    response = admin.patch(f"users/{user.id}", {"email": "a@b", "name": "王芳芳"})
    assert response.status_code == 422 and "email" in response.get_json()["errors"]
    db.session.expire_all()
    assert (user.name, user.email) == ("王芳", "t1002@demo.example.edu.cn")
    response = admin.patch(f"users/{user.id}", {"phone": "0571-88886666"})
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    assert (user.name, user.phone) == ("王芳", "0571-88886666")


def test_password_reset_is_validated_and_audited(admin, app):
    """A short new password is 422; a good one replaces the old and is in the audit log."""
    user_id = db.session.scalar(sa.select(User.id).where(User.username == "t1002"))
    assert admin.post(f"users/{user_id}/password", {"password": "1234"}).status_code == 422
    assert admin.post(f"users/{user_id}/password", {"password": "new-pass-2026"}).status_code == 200
    Api(app).login("t1002", "new-pass-2026")
    assert db.session.scalar(sa.select(AuditEvent.detail).where(AuditEvent.kind == "user_password_reset")) \
        == {"username": "t1002"}


def test_teachers_may_not_manage_users(demo, app):
    """A teacher gets 403 on the users API."""
    teacher = Api(app).login("t1001")
    assert teacher.get("users").status_code == 403
    assert teacher.post("users", {"username": "x1", "name": "x", "password": "hall2026!"}).status_code == 403


def test_deactivated_user_with_right_password_is_told_the_account_is_disabled(admin, app):
    """Sign-in of a deactivated account: right password → 403 「账号已停用，请联系管理员」; wrong → 401 as usual."""
    user_id = db.session.scalar(sa.select(User.id).where(User.username == "t1002"))
    response = admin.patch(f"users/{user_id}", {"active": False})
    assert response.status_code == 200
    client = Api(app).client
    right = client.post("/api/v1/auth/login", json={"username": "t1002", "password": "hall2026"})
    assert right.status_code == 403 and right.get_json()["message"] == "账号已停用，请联系管理员"
    wrong = client.post("/api/v1/auth/login", json={"username": "t1002", "password": "wrong-pass"})
    assert wrong.status_code == 401 and wrong.get_json()["message"] == "用户名或密码错误"


def test_roles_are_granted_and_removed_but_not_ones_own_admin_role(admin):
    """POST memberships gives t1002 a college-wide supervisor role, DELETE takes it away; a duplicate is 422,
    and the administrator cannot remove their own admin role (409)."""
    user_id = db.session.scalar(sa.select(User.id).where(User.username == "t1002"))
    granted = admin.post(f"users/{user_id}/memberships", {"role": "supervisor", "org_unit_id": None})
    assert granted.status_code == 201 and "supervisor" in granted.get_json()["roles"]
    assert admin.post(f"users/{user_id}/memberships", {"role": "supervisor"}).status_code == 422
    assert admin.post(f"users/{user_id}/memberships", {"role": "nosuchrole"}).status_code == 422
    [membership] = [m for m in granted.get_json()["memberships"] if m["role"] == "supervisor"]
    removed = admin.delete(f"users/{user_id}/memberships/{membership['id']}")
    assert removed.status_code == 200 and "supervisor" not in removed.get_json()["roles"]
    me = admin.get("me").get_json()
    [own] = [m for m in me["memberships"] if m["role"] == "admin"]
    assert admin.delete(f"users/{me['id']}/memberships/{own['id']}").status_code == 409
