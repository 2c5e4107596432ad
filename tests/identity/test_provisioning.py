"""First sign-in creates or updates the user from the identity's attributes with a configurable mapping."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hall.accounts import services as accounts
from hall.accounts.models import User
from hall.extensions import db
from integrations import SignOnRefused, provisioning

CHINESE_MAP = {"username": ["工号", "学号"], "name": ["姓名"], "org_unit": ["部门"], "roles": ["角色"]}


def _count_users() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User))


def test_chinese_attribute_names_map_to_user(org_units):
    """工号 → username, 姓名 → name, 部门 → org unit by code, 角色 → roles held in that unit."""
    user = provisioning.provision({"工号": "T7001", "姓名": "王五", "部门": "xxgc", "角色": ["教师"]}, CHINESE_MAP)
    assert (user.username, user.name, user.org_unit_id) == ("T7001", "王五", org_units.id)
    assert [(m.role_code, m.org_unit_id) for m in user.memberships] == [("teacher", org_units.id)]


def test_a_counsellor_looks_after_the_students_of_their_own_department(org_units):
    """角色 辅导员 is held in the person's unit, like 教师: the counsellor of xxgc, not of the whole college
    (where every counsellor would see every student's leave)."""
    user = provisioning.provision({"工号": "C7003", "姓名": "何七", "部门": "xxgc", "角色": ["辅导员"]}, CHINESE_MAP)
    assert [(m.role_code, m.org_unit_id) for m in user.memberships] == [("counsellor", org_units.id)]


def test_student_number_used_when_no_staff_number(org_units):
    """A student's 学号 is the username when the identity has no 工号."""
    user = provisioning.provision({"学号": "20249999", "姓名": "赵六", "角色": "student"}, CHINESE_MAP)
    assert user.username == "20249999" and user.role_codes == {"student"}


def test_role_map_setting_maps_college_groups(app, org_units, monkeypatch):
    """HALL_SSO_ROLE_MAP maps the college's own group names to role codes; college-wide roles get no unit."""
    monkeypatch.setitem(app.config, "SSO_ROLE_MAP", '{"质量管理办公室成员": "quality_office"}')
    user = provisioning.provision({"工号": "Q7002", "姓名": "钱七", "角色": ["质量管理办公室成员", "游客"]},
                                  CHINESE_MAP)
    assert [(m.role_code, m.org_unit_id) for m in user.memberships] == [("quality_office", None)]


def test_update_keeps_local_roles_and_adds_new(org_units):
    """A later sign-in updates name and unit and adds roles; roles granted locally stay."""
    user = accounts.create_user("T7003", "旧名", roles=[("admin", None)])
    provisioning.provision({"工号": "T7003", "姓名": "新名", "部门": "xxgc", "角色": ["teacher"]}, CHINESE_MAP)
    db.session.refresh(user)
    assert (user.name, user.org_unit_id) == ("新名", org_units.id)
    assert user.role_codes == {"admin", "teacher"}
    assert _count_users() == 1


def test_unknown_department_leaves_unit_unset(org_units):
    """A department code the hall does not know is not invented; the unit stays empty."""
    user = provisioning.provision({"工号": "T7004", "姓名": "孙八", "部门": "nope"}, CHINESE_MAP)
    assert user.org_unit_id is None


def test_identity_without_username_refused(org_units):
    """No 工号/学号 and no principal: refused, nothing created."""
    with pytest.raises(SignOnRefused):
        provisioning.provision({"姓名": "无名"}, CHINESE_MAP)
    assert _count_users() == 0


def test_disabled_user_refused(org_units):
    """A user disabled in the hall cannot come back through sign-on."""
    user = accounts.create_user("T7005", "周九")
    user.active = False
    db.session.commit()
    with pytest.raises(SignOnRefused):
        provisioning.provision({"工号": "T7005", "姓名": "周九"}, CHINESE_MAP)


def test_creation_can_be_switched_off(app, org_units, monkeypatch):
    """With HALL_SSO_CREATE_USERS=0 an unknown person is refused instead of created."""
    monkeypatch.setitem(app.config, "SSO_CREATE_USERS", "0")
    with pytest.raises(SignOnRefused):
        provisioning.provision({"工号": "T7006", "姓名": "吴十"}, CHINESE_MAP)
    assert _count_users() == 0
