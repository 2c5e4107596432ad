"""The demo organisation: a plausible (invented) college with the people the shipped flows need."""

from __future__ import annotations

import sqlalchemy as sa

from hall.accounts import services as accounts
from hall.accounts.models import User
from hall.extensions import db
from hall.org import services as org

DEMO_PASSWORD = "hall2026"

# (code, name, kind, parent code)
UNITS = [
    ("college", "示范职业技术学院（示例）", "college", None),
    ("xxgc", "信息工程学院", "department", "college"),
    ("xxgc-rj", "软件技术教研室", "office", "xxgc"),
    ("xxgc-wl", "计算机网络技术教研室", "office", "xxgc"),
    ("jdgc", "机电工程学院", "department", "college"),
    ("jdgc-zdh", "电气自动化教研室", "office", "jdgc"),
    ("jjgl", "经济管理学院", "department", "college"),
    ("jjgl-kj", "大数据与会计教研室", "office", "jjgl"),
    ("rsc", "人事处", "department", "college"),
    ("dzb", "党政办公室", "department", "college"),
    ("zlb", "质量管理办公室", "department", "college"),
    ("xxgc-rj2401", "软件2401班", "class", "xxgc"),
]

# (username, name, unit code, [(role, unit code or None)])
PEOPLE = [
    ("admin", "系统管理员", "college", [("admin", None)]),
    ("t1001", "张伟", "xxgc-rj", [("teacher", "xxgc-rj")]),
    ("t1002", "王芳", "xxgc-wl", [("teacher", "xxgc-wl")]),
    ("t1003", "刘洋", "jdgc-zdh", [("teacher", "jdgc-zdh")]),
    ("h2001", "李华", "xxgc", [("dept_head", "xxgc"), ("teacher", "xxgc")]),
    ("h2002", "陈静", "jdgc", [("dept_head", "jdgc"), ("teacher", "jdgc")]),
    ("h2003", "周敏", "jjgl", [("dept_head", "jjgl"), ("teacher", "jjgl")]),
    ("r3001", "赵磊", "rsc", [("hr", None)]),
    ("o3002", "孙丽", "dzb", [("office", None)]),
    ("l3003", "吴军", "dzb", [("legal", None)]),
    ("s3004", "郑红", "dzb", [("seal_keeper", None)]),
    ("q4001", "钱程", "zlb", [("quality_office", None)]),
    ("d4002", "冯涛", "zlb", [("supervisor", None)]),
    # 辅导员: a department's counsellors look after the students of all its classes.
    ("c5001", "何静", "xxgc", [("counsellor", "xxgc")]),
    ("c5002", "马超", "jdgc", [("counsellor", "jdgc")]),
    ("c5003", "罗敏", "jjgl", [("counsellor", "jjgl")]),
    ("20240101", "林小雨", "xxgc-rj2401", [("student", "xxgc-rj2401")]),
]


def load_demo_organisation() -> list[tuple[str, str, str]]:
    """Create the demo units and people (idempotent); returns (username, name, roles) for printing."""
    accounts.ensure_roles()
    units = {}
    for code, name, kind, parent in UNITS:
        existing = db.session.scalar(sa.select(org.OrgUnit).where(org.OrgUnit.code == code))
        units[code] = existing or org.create_unit(code, name, kind, units.get(parent))
    created = []
    for username, name, unit, roles in PEOPLE:
        user = db.session.scalar(sa.select(User).where(User.username == username))
        if user is None:
            user = accounts.create_user(username, name, DEMO_PASSWORD, email=f"{username}@demo.example.edu.cn",
                                        org_unit_id=units[unit].id,
                                        roles=[(r, units[u].id if u else None) for r, u in roles], commit=False)
        created.append((username, name, ", ".join(r for r, _ in roles)))
    db.session.commit()
    return created
