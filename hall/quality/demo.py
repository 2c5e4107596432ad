"""The demo college of the quality domain (诊改): programs, courses, teachers, students, points and data.

`load()` builds on the demo organisation (hall/org/demo.py) and is idempotent: every part inserts only
what is missing (looked up by code or username), measurements are drawn from a fixed seed, and the
cycle is advanced step by step only as far as each unit's plan goes, so a second run changes nothing.
People and subjects are written with bulk inserts (one statement per table), so the ~3,000 students
cost a second, not a minute; the diagnosis and warning-handling processes go through the real services.

What it makes: the college subject, 10 programs (专业) with their leaders (real logins, password
"hall2026"), 60 courses (课程), 150 teachers, 3,000 students in 60 classes, 23 monitoring points (质控点)
over the five levels with the national 合格 lines of 教发〔2004〕2号 where they apply, standards, targets
broken down from the college's, measurements for 2024-2025 and 2025-2026, the warnings they raise with
their handling processes, and the program level's 2025-2026 cycle with units at different steps.
"""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa

from hall.accounts.models import User
from hall.db_types import utcnow
from hall.extensions import db
from hall.org import services as org
from hall.org.demo import DEMO_PASSWORD, load_demo_organisation
from hall.org.models import Membership, OrgUnit
from hall.quality.models import (
    CycleUnit,
    Measurement,
    MonitoringPoint,
    QualityWarning,
    Standard,
    Subject,
    Target,
)

SEED = 20260901
PERIODS = ("2024-2025", "2025-2026")
CYCLE_PERIOD = "2025-2026"
COLLEGE_CODE = "college"
PRESIDENT = ("y0001", "黄建国")  # 院长: responsible for the college subject, head of the college unit

# (subject code, name, class prefix, department, office code, office name, leader username or None)
PROGRAMS = [
    ("510203", "软件技术", "软件", "xxgc", "xxgc-rj", "软件技术教研室", "t1001"),
    ("510202", "计算机网络技术", "网络", "xxgc", "xxgc-wl", "计算机网络技术教研室", "t1002"),
    ("510205", "大数据技术", "大数据", "xxgc", "xxgc-dsj", "大数据技术教研室", None),
    ("460306", "电气自动化技术", "电气", "jdgc", "jdgc-zdh", "电气自动化教研室", "t1003"),
    ("460305", "工业机器人技术", "机器人", "jdgc", "jdgc-jqr", "工业机器人技术教研室", None),
    ("460301", "机电一体化技术", "机电", "jdgc", "jdgc-jd", "机电一体化技术教研室", None),
    ("530302", "大数据与会计", "会计", "jjgl", "jjgl-kj", "大数据与会计教研室", None),
    ("530701", "电子商务", "电商", "jjgl", "jjgl-dzsw", "电子商务教研室", None),
    ("530605", "市场营销", "营销", "jjgl", "jjgl-yx", "市场营销教研室", None),
    ("530802", "物流管理", "物流", "jjgl", "jjgl-wl", "物流管理教研室", None),
]
COURSES = {
    "软件技术": ["程序设计基础", "Java面向对象程序设计", "Web前端开发", "数据库应用技术", "软件测试",
             "Spring Boot企业级开发"],
    "计算机网络技术": ["计算机网络基础", "路由与交换技术", "网络安全技术", "Linux系统管理", "云计算技术应用",
                "网络工程综合实训"],
    "大数据技术": ["Python程序设计", "大数据平台部署与运维", "数据采集技术", "数据分析与可视化", "Hadoop应用开发",
              "Spark数据处理"],
    "电气自动化技术": ["电工技术基础", "电子技术", "电机与电气控制", "PLC应用技术", "供配电技术", "自动控制原理"],
    "工业机器人技术": ["机械制图", "工业机器人基础", "工业机器人编程与操作", "机器视觉技术", "传感器与检测技术",
                "工业机器人系统集成"],
    "机电一体化技术": ["机械设计基础", "液压与气动技术", "数控加工技术", "单片机应用技术", "机电设备故障诊断",
                "自动化生产线安装与调试"],
    "大数据与会计": ["基础会计", "财务会计", "成本核算与管理", "税费计算与申报", "财务大数据分析", "管理会计"],
    "电子商务": ["电子商务基础", "网店运营", "网络营销", "直播电商", "商务数据分析", "视觉营销设计"],
    "市场营销": ["市场营销基础", "消费者行为分析", "市场调查与预测", "销售管理", "品牌策划", "新媒体营销"],
    "物流管理": ["物流管理基础", "仓储管理", "运输管理", "供应链管理", "物流信息技术", "智慧物流"],
}
TEACHERS_PER_PROGRAM = 15
TEACHER_NUMBERS = range(1001, 1001 + TEACHERS_PER_PROGRAM * len(PROGRAMS))  # t1001 … t1150
GRADES = (2023, 2024, 2025)  # 年级
CLASSES_PER_GRADE = 2
STUDENTS_PER_CLASS = 50  # 10 programs × 3 grades × 2 classes × 50 = 3,000 students

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉宇浩然欣怡子涵梓轩雨晨思远嘉佳琪婷博文俊"

# The monitoring points: (level, element, code, name, unit, direction, target, standard, warning, source,
# is_example, note). Standard lines of the institution level are the national 合格 lines for 高职 of
# 教发〔2004〕2号《普通高等学校基本办学条件指标（试行）》; the other values are invented for the demo.
NATIONAL = "标准值为教发〔2004〕2号高职高专院校合格线。"
POINTS = [
    ("institution", "办学条件", "INS-SSB", "生师比", "", "lower", 16, 18, 22, "人事处", False,
     NATIONAL + "预警值 22 为该文件的限制招生（黄牌）线。"),
    ("institution", "师资队伍", "INS-YJS", "具有研究生学位教师占专任教师比例", "%", "higher", 30, 15, 10, "人事处",
     False, NATIONAL + "预警值 10% 为本示例设定，非文件规定。"),
    ("institution", "办学条件", "INS-YF", "生均教学行政用房", "平方米", "higher", 16, 14, 9, "资产处", False,
     NATIONAL + "综合、师范、民族、工科、农林、医学类院校为 16 平方米，本示例学院取 14；预警值为本示例设定。"),
    ("institution", "办学条件", "INS-YQ", "生均教学科研仪器设备值", "元", "higher", 6000, 4000, 3000, "资产处",
     False, NATIONAL + "预警值为本示例设定。"),
    ("institution", "办学条件", "INS-TS", "生均图书", "册", "higher", 80, 60, 50, "图书馆", False,
     NATIONAL + "部分类别院校为 80 册，本示例取 60；预警值为本示例设定。"),
    ("institution", "人才培养", "INS-JY", "毕业生初次就业率", "%", "higher", 96, 90, 85, "招生就业处", True,
     "示例值。"),
    ("program", "人才培养质量", "PRG-JY", "就业率", "%", "higher", 96, 90, 85, "招生就业处", True, "示例值。"),
    ("program", "人才培养质量", "PRG-DK", "专业对口率", "%", "higher", 80, 70, 60, "招生就业处", True, "示例值。"),
    ("program", "师资队伍", "PRG-SS", "双师素质教师比例", "%", "higher", 70, 50, 40, "人事处", True,
     "示例值（参照高职人才培养工作评估中双师素质教师比例的要求设定）。"),
    ("program", "教学条件", "PRG-SX", "实训开出率", "%", "higher", 100, 95, 90, "教务处", True, "示例值。"),
    ("program", "社会评价", "PRG-MY", "用人单位满意度", "%", "higher", 95, 90, 85, "招生就业处", True, "示例值。"),
    ("course", "教学效果", "CRS-YL", "课程优良率", "%", "higher", 85, 70, 60, "教务处", True, "示例值。"),
    ("course", "教学效果", "CRS-PJ", "学生评教分", "分", "higher", 92, 85, 80, "教务处", True, "示例值。"),
    ("course", "课程资源", "CRS-ZY", "教学资源更新率", "%", "higher", 30, 20, 10, "教务处", True, "示例值。"),
    ("course", "教学效果", "CRS-TG", "课程考核通过率", "%", "higher", 95, 85, 75, "教务处", True, "示例值。"),
    ("teacher", "教学工作", "TCH-GZL", "年度教学工作量", "学时", "higher", 320, 280, 240, "教务处", True,
     "示例值。"),
    ("teacher", "教学工作", "TCH-PJ", "学生评教分", "分", "higher", 92, 85, 80, "教务处", True, "示例值。"),
    ("teacher", "专业发展", "TCH-QY", "企业实践天数", "天", "higher", 36, 20, 10, "人事处", True,
     "示例值（专业课教师每五年累计企业实践不少于六个月，约合每年 36 天）。"),
    ("teacher", "专业发展", "TCH-PX", "年度培训学时", "学时", "higher", 72, 48, 24, "人事处", True, "示例值。"),
    ("student", "学业", "STU-QK", "缺课学时", "学时", "lower", 0, 20, 40, "学生工作处", True,
     "学院学业预警分黄、橙、红三级；系统以标准值（超过即黄色预警）和预警值（超过即红色预警）两条线表示，"
     "橙色（30 学时以上）在处置时按数值区分。示例值。"),
    ("student", "学业", "STU-BJG", "不及格学分", "学分", "lower", 0, 6, 12, "教务处", True,
     "黄色：超过 6 学分；橙色：超过 9 学分；红色：超过 12 学分（以两条线表示，橙色按数值区分）。示例值。"),
    ("student", "身心健康", "STU-TC", "体质健康测试成绩", "分", "higher", 80, 60, 50, "体育部", True,
     "标准值 60 为《国家学生体质健康标准》及格线；目标值与预警值为示例。"),
    ("student", "学业", "STU-JD", "平均学分绩点", "", "higher", 3.0, 2.0, 1.5, "教务处", True, "示例值。"),
]
# Chance of a yellow (misses the standard) and of a red (past the warning line) value, per level.
RISK = {"institution": (0.1, 0.0), "program": (0.12, 0.03), "course": (0.08, 0.02), "teacher": (0.05, 0.01),
        "student": (0.01, 0.003)}
DECIMALS = {"INS-SSB": 1, "INS-YQ": 0, "INS-TS": 0, "TCH-GZL": 0, "TCH-QY": 0, "TCH-PX": 0, "STU-QK": 0,
            "STU-BJG": 0, "STU-TC": 0, "STU-JD": 2}

# Standards (标准链): (level, kind, system, title, items).
STANDARDS = [
    ("institution", "operation", "decision", "学院办学基本条件运行标准",
     ["生师比不高于 18:1", "具有研究生学位教师占专任教师比例不低于 15%", "生均教学行政用房不低于 14 平方米",
      "生均教学科研仪器设备值不低于 4000 元", "生均图书不低于 60 册"]),
    ("institution", "development", "decision", "学院“十四五”事业发展标准",
     ["建成省级高水平专业群 2 个以上", "双师素质教师比例达到 70%", "毕业生初次就业率稳定在 95% 以上"]),
    ("program", "operation", "generation", "专业建设运行标准",
     ["人才培养方案每年论证修订", "实训项目开出率不低于 95%", "双师素质教师比例不低于 50%", "就业率不低于 90%"]),
    ("program", "development", "resource", "专业建设发展标准",
     ["建成校企共建实训基地 1 个以上", "专业对口率达到 80%", "每三年完成一次专业剖析"]),
    ("course", "operation", "generation", "课程建设运行标准",
     ["课程标准、授课计划齐全规范", "学生评教分不低于 85 分", "课程考核通过率不低于 85%"]),
    ("course", "development", "resource", "课程建设发展标准",
     ["每年更新教学资源不少于 20%", "建成在线开放课程", "融入行业新技术、新工艺、新规范"]),
    ("teacher", "operation", "support", "教师教学工作运行标准",
     ["完成年度教学工作量 280 学时", "学生评教分不低于 85 分", "无教学事故"]),
    ("teacher", "development", "resource", "教师专业发展标准",
     ["每年企业实践不少于 20 天", "每年参加培训不少于 48 学时", "五年内取得双师素质资格"]),
    ("student", "operation", "supervision", "学生学业运行标准",
     ["学期缺课不超过 20 学时", "不及格学分不超过 6 学分", "体质健康测试合格"]),
    ("student", "development", "support", "学生全面发展标准",
     ["取得一项以上职业技能等级证书", "参加一项以上技能竞赛或创新创业项目", "平均学分绩点达到 3.0"]),
]
STANDARD_CODES = {"institution": "INS", "program": "PRG", "course": "CRS", "teacher": "TCH", "student": "STU"}

# The college's targets for a period and the point each one follows (or None for a text-only target).
COLLEGE_TARGETS = [
    ("生师比控制在 16:1 以内", "INS-SSB", 16),
    ("具有研究生学位教师比例达到 30%", "INS-YJS", 30),
    ("毕业生初次就业率达到 96%", "INS-JY", 96),
    ("建成省级高水平专业群，专业双师素质教师比例达到 70%", None, None),
]
# Each program's targets: (text, point, value, index of the college target it breaks down).
PROGRAM_TARGETS = [
    ("{name}专业就业率达到 96%", "PRG-JY", 96, 2),
    ("{name}专业双师素质教师比例达到 70%", "PRG-SS", 70, 3),
    ("{name}专业实训开出率达到 100%", "PRG-SX", 100, 3),
]


def load() -> dict:
    """Load (or complete) the demo college; safe to run again. Returns the counts per kind."""
    from flask import current_app

    from hall.processes import services as processes
    from hall.quality import services

    load_demo_organisation()
    processes.deploy_directory(current_app.config["WORKFLOWS_DIR"], current_app.config["FORMS_DIR"])
    services.ensure_levels()
    units = _units()
    people = _people(units)
    subjects = _subjects(units, people)
    points = _standards_and_points()
    _targets(subjects, points)
    _measurements(subjects, points)
    _warnings(people)
    _cycle(subjects, people)
    return counts()


def counts() -> dict:
    """How many of each kind the demo holds (what the tests and the CLI look at)."""
    by_level = dict(db.session.execute(
        sa.select(Subject.level_code, sa.func.count()).group_by(Subject.level_code)).all())
    return {
        "subjects": by_level,
        "users": db.session.scalar(sa.select(sa.func.count()).select_from(User)),
        "points": dict(db.session.execute(
            sa.select(MonitoringPoint.level_code, sa.func.count()).group_by(MonitoringPoint.level_code)).all()),
        "standards": db.session.scalar(sa.select(sa.func.count()).select_from(Standard)),
        "targets": db.session.scalar(sa.select(sa.func.count()).select_from(Target)),
        "measurements": db.session.scalar(sa.select(sa.func.count()).select_from(Measurement)),
        "warnings": dict(db.session.execute(
            sa.select(QualityWarning.state, sa.func.count()).group_by(QualityWarning.state)).all()),
        "cycle_units": db.session.scalar(sa.select(sa.func.count()).select_from(CycleUnit)),
    }


# -- organisation ------------------------------------------------------------------------------------

def _class_plan() -> list[tuple[int, str, str, int]]:
    """(program index, class code, class name, grade) for every class."""
    plan = []
    for index, (_code, _name, prefix, _dept, office, _office_name, _leader) in enumerate(PROGRAMS):
        for grade in GRADES:
            for number in range(1, CLASSES_PER_GRADE + 1):
                plan.append((index, f"{office}{grade % 100}{number:02d}", f"{prefix}{grade % 100}{number:02d}班",
                             grade))
    return plan


def _units() -> dict[str, OrgUnit]:
    """The program offices (教研室) and classes that the demo organisation lacks."""
    units = {u.code: u for u in db.session.scalars(sa.select(OrgUnit))}
    for _code, _name, _prefix, dept, office, office_name, _leader in PROGRAMS:
        if office not in units:
            units[office] = org.create_unit(office, office_name, "office", units[dept])
    for index, code, name, _grade in _class_plan():
        if code not in units:
            units[code] = org.create_unit(code, name, "class", units[PROGRAMS[index][3]])
    db.session.commit()
    return units


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _teacher_plan() -> dict[str, int]:
    """Teacher username → program index, 15 a program; the demo's own teachers keep their offices."""
    fixed = {f"t{number}": None for number in TEACHER_NUMBERS}
    for index, program in enumerate(PROGRAMS):
        if program[6]:
            fixed[program[6]] = index
    slots = [i for i in range(len(PROGRAMS)) for _ in range(TEACHERS_PER_PROGRAM)]
    for index in (v for v in fixed.values() if v is not None):
        slots.remove(index)
    for username in fixed:
        if fixed[username] is None:
            fixed[username] = slots.pop(0)
    return fixed


def _student_plan() -> list[tuple[str, int, str]]:
    """(student number, program index, class code); 林小雨 20240101 is the first of 软件2401班."""
    plan = []
    for index, class_code, _class_name, grade in _class_plan():
        number = int(class_code[-2:])
        for seq in range(1, STUDENTS_PER_CLASS + 1):
            username = f"{grade}{index + 1:02d}{number}{seq:02d}"
            if (index, grade, number, seq) == (0, 2024, 1, 1):
                username = "20240101"
            plan.append((username, index, class_code))
    return plan


def _people(units: dict[str, OrgUnit]) -> dict:
    """Teachers, students and the president as bulk inserts with one shared password hash; their roles."""
    rng = random.Random(SEED)
    teachers = _teacher_plan()
    students = _student_plan()
    existing = set(db.session.scalars(sa.select(User.username)))
    probe = User()
    probe.set_password(DEMO_PASSWORD)  # one pbkdf2 for everybody instead of 3,000
    now = utcnow()
    rows = []

    def add(username, name, unit_code):
        if username not in existing:
            rows.append(dict(username=username, name=name, email=f"{username}@demo.example.edu.cn",
                             org_unit_id=units[unit_code].id, password_hash=probe.password_hash, active=True,
                             created_at=now))

    add(PRESIDENT[0], PRESIDENT[1], "college")
    for username, index in teachers.items():
        add(username, _name(rng), PROGRAMS[index][4])
    for username, _index, class_code in students:
        add(username, _name(rng), class_code)
    if rows:
        db.session.execute(sa.insert(User), rows)
    ids = dict(db.session.execute(sa.select(User.username, User.id)).all())

    leaders = {}
    for index, program in enumerate(PROGRAMS):
        leaders[index] = program[6] or next(u for u, i in teachers.items() if i == index and u not in
                                            {p[6] for p in PROGRAMS if p[6]})
    by_program = {i: [u for u, p in teachers.items() if p == i] for i in range(len(PROGRAMS))}
    course_leaders = {}
    for index, names in by_program.items():
        others = [u for u in names if u != leaders[index]]
        course_leaders[index] = others[:len(COURSES[PROGRAMS[index][1]])]

    wanted = {(ids[PRESIDENT[0]], "dept_head", units["college"].id)}
    for username, index in teachers.items():
        wanted.add((ids[username], "teacher", units[PROGRAMS[index][4]].id))
    for index, username in leaders.items():
        wanted.add((ids[username], "program_leader", units[PROGRAMS[index][4]].id))
    for index, usernames in course_leaders.items():
        for username in usernames:
            wanted.add((ids[username], "course_leader", units[PROGRAMS[index][4]].id))
    for username, _index, class_code in students:
        wanted.add((ids[username], "student", units[class_code].id))
    held = set(db.session.execute(sa.select(Membership.user_id, Membership.role_code, Membership.org_unit_id)).all())
    missing = [dict(user_id=u, role_code=r, org_unit_id=o) for u, r, o in sorted(wanted - held)]
    if missing:
        db.session.execute(sa.insert(Membership), missing)
    db.session.commit()
    heads = {code: ids[username] for code, username in (("xxgc", "h2001"), ("jdgc", "h2002"), ("jjgl", "h2003"))}
    return {"ids": ids, "teachers": teachers, "students": students, "leaders": leaders,
            "course_leaders": course_leaders, "heads": heads}


def _subjects(units: dict[str, OrgUnit], people: dict) -> dict:
    """The subjects of the five levels; returns {level: {code: id}}."""
    ids = people["ids"]

    def existing(level):
        return dict(db.session.execute(
            sa.select(Subject.code, Subject.id).where(Subject.level_code == level)).all())

    def insert(level, rows):
        known = existing(level)
        fresh = [dict(level_code=level, active=True, **r) for r in rows if r["code"] not in known]
        if fresh:
            db.session.execute(sa.insert(Subject), fresh)
        return existing(level)

    college = insert("institution", [dict(code=COLLEGE_CODE, name=units["college"].name,
                                          org_unit_id=units["college"].id, responsible_user_id=ids[PRESIDENT[0]],
                                          parent_id=None, attributes={"kind": "高职"})])
    programs = insert("program", [
        dict(code=code, name=name, org_unit_id=units[office].id, responsible_user_id=ids[people["leaders"][i]],
             parent_id=college[COLLEGE_CODE], attributes={"department": dept, "class_prefix": prefix})
        for i, (code, name, prefix, dept, office, _office_name, _leader) in enumerate(PROGRAMS)
    ])
    course_rows = []
    for i, (code, name, _prefix, _dept, office, _office_name, _leader) in enumerate(PROGRAMS):
        for k, course in enumerate(COURSES[name], start=1):
            course_rows.append(dict(code=f"{code}-{k:02d}", name=course, org_unit_id=units[office].id,
                                    responsible_user_id=ids[people["course_leaders"][i][k - 1]],
                                    parent_id=programs[code], attributes={"program": name, "credits": 4}))
    courses = insert("course", course_rows)
    names = dict(db.session.execute(sa.select(User.username, User.name)).all())
    teachers = insert("teacher", [
        dict(code=u, name=names[u], org_unit_id=units[PROGRAMS[i][4]].id, responsible_user_id=ids[u],
             parent_id=programs[PROGRAMS[i][0]], attributes={"program": PROGRAMS[i][1]})
        for u, i in people["teachers"].items()
    ])
    students = insert("student", [
        dict(code=u, name=names[u], org_unit_id=units[c].id, responsible_user_id=ids[u],
             parent_id=programs[PROGRAMS[i][0]], attributes={"program": PROGRAMS[i][1], "class": units[c].name})
        for u, i, c in people["students"]
    ])
    db.session.commit()
    return {"institution": college, "program": programs, "course": courses, "teacher": teachers,
            "student": students}


# -- standards, points, targets ------------------------------------------------------------------------

def _standards_and_points() -> dict[str, MonitoringPoint]:
    known = set(db.session.scalars(sa.select(Standard.code)))
    for level, kind, system, title, items in STANDARDS:
        code = f"STD-{STANDARD_CODES[level]}-{'OP' if kind == 'operation' else 'DEV'}"
        if code not in known:
            db.session.add(Standard(level_code=level, kind=kind, system=system, code=code, title=title,
                                    items=[{"code": f"{code}-{n}", "text": t} for n, t in enumerate(items, 1)]))
    db.session.flush()
    standards = dict(db.session.execute(sa.select(Standard.code, Standard.id)).all())
    known = set(db.session.scalars(sa.select(MonitoringPoint.code)))
    for (level, element, code, name, unit, direction, target, standard, warning, source, example,
         note) in POINTS:
        if code not in known:
            db.session.add(MonitoringPoint(
                level_code=level, element=element, code=code, name=name, unit=unit, direction=direction,
                target_value=target, standard_value=standard, warning_value=warning, source=source,
                frequency="学年", standard_id=standards[f"STD-{STANDARD_CODES[level]}-OP"], is_example=example,
                note=note))
    db.session.commit()
    codes = [p[2] for p in POINTS]
    return {p.code: p for p in db.session.scalars(sa.select(MonitoringPoint).where(MonitoringPoint.code.in_(codes)))}


def _targets(subjects: dict, points: dict[str, MonitoringPoint]) -> None:
    """The college's targets per period and each program's, broken down from them.

    2024-2025 holds approved targets; 2025-2026's program targets are drafts that pre-fill the 目标 step
    of the cycle (approving them there replaces them, as the cycle does for any draft).
    """
    college_id = subjects["institution"][COLLEGE_CODE]
    for period in PERIODS:
        if db.session.scalar(sa.select(Target.id).where(Target.subject_id == college_id, Target.period == period)):
            continue
        parents = []
        for text, point, value in COLLEGE_TARGETS:
            target = Target(subject_id=college_id, period=period, text=text,
                            point_id=points[point].id if point else None, target_value=value, state="approved",
                            origin="plan")
            db.session.add(target)
            parents.append(target)
        db.session.flush()
        state = "draft" if period == CYCLE_PERIOD else "approved"
        rows = []
        for code, name, *_rest in PROGRAMS:
            for text, point, value, parent in PROGRAM_TARGETS:
                rows.append(dict(subject_id=subjects["program"][code], period=period, parent_id=parents[parent].id,
                                 text=text.format(name=name), point_id=points[point].id, target_value=value,
                                 state=state, origin="plan"))
        db.session.execute(sa.insert(Target), rows)
    db.session.commit()


# -- measurements and warnings -----------------------------------------------------------------------

def _value(rng: random.Random, point: MonitoringPoint, yellow: float, red: float) -> float:
    """A plausible value: mostly on the right side of the standard, some missing it, a few past the warning."""
    t, s, w = point.target_value, point.standard_value, point.warning_value
    draw = rng.random()
    if point.direction == "lower":
        if draw < red:
            value = rng.uniform(w + 1, w * 1.5)
        elif draw < red + yellow:
            value = rng.uniform(s + 1, w)
        else:
            value = rng.triangular(t, s, t)  # most students miss few hours
    else:
        if draw < red:
            value = rng.uniform(w - (s - w) * 0.8, w * 0.999)
        elif draw < red + yellow:
            value = rng.uniform(w, s * 0.999)
        else:
            value = rng.uniform(s, t + (t - s) * 0.2)
    if point.unit == "%":
        value = min(value, 100.0)
    return round(value, DECIMALS.get(point.code, 1))


# A few values fixed for the story of the demo: 软件技术's 双师比例 misses its standard in 2025-2026.
FIXED = {("program", "510203", "PRG-SS", "2025-2026"): 46.0, ("program", "510203", "PRG-SS", "2024-2025"): 52.0}


def _measurements(subjects: dict, points: dict[str, MonitoringPoint]) -> None:
    """Two periods of values for every subject and point of its level (fixed seed, bulk insert)."""
    rng = random.Random(SEED + 1)
    have = set(db.session.execute(sa.select(Measurement.subject_id, Measurement.point_id, Measurement.period)).all())
    now = utcnow()
    rows = []
    for level in ("institution", "program", "course", "teacher", "student"):
        level_points = [points[p[2]] for p in POINTS if p[0] == level]
        yellow, red = RISK[level]
        for code, subject_id in sorted(subjects[level].items()):
            for period in PERIODS:
                for point in level_points:
                    value = _value(rng, point, yellow, red)
                    value = FIXED.get((level, code, point.code, period), value)
                    if (subject_id, point.id, period) not in have:
                        rows.append(dict(subject_id=subject_id, point_id=point.id, period=period, value=value,
                                         source=point.source, measured_at=now))
    for start in range(0, len(rows), 5000):
        db.session.execute(sa.insert(Measurement), rows[start:start + 5000])
    db.session.commit()


def _warnings(people: dict) -> None:
    """Last year's warnings were handled (closed where this year's data recovered); this year's are open
    and each has its handling process; two of the programs' are carried forward by their people."""
    from hall.quality import warnings

    warnings.evaluate_warnings(period=PERIODS[0], start_processes=False, commit=False)
    db.session.execute(
        sa.update(QualityWarning).where(QualityWarning.period == PERIODS[0], QualityWarning.state == "open")
        .values(state="handled", handled_at=utcnow() - timedelta(days=200)),
        execution_options={"synchronize_session": False})
    db.session.commit()
    quality_office = db.session.scalar(sa.select(User).where(User.username == "q4001"))
    warnings.evaluate_warnings(period=CYCLE_PERIOD, actor=quality_office)
    # Program warnings of this year (软件技术's first): the first is handled to the end, the second awaits review.
    program_warnings = db.session.execute(
        sa.select(QualityWarning.instance_id, Subject.responsible_user_id, Subject.org_unit_id, MonitoringPoint.name)
        .join(Subject, Subject.id == QualityWarning.subject_id)
        .join(MonitoringPoint, MonitoringPoint.id == QualityWarning.point_id)
        .where(Subject.level_code == "program", QualityWarning.period == CYCLE_PERIOD,
               QualityWarning.instance_id.is_not(None))
        .order_by((Subject.code != PROGRAMS[0][0]), QualityWarning.id).limit(2)
    ).all()
    for n, (instance_id, owner_id, unit_id, point_name) in enumerate(program_warnings):
        owner = db.session.get(User, owner_id)
        head = db.session.get(User, _head_of(unit_id, people))
        plan = [("analyse", owner, {"cause": WARNING_TEXTS["cause"].format(point=point_name),
                                    "cause_kind": "资源不足"}),
                ("plan", owner, {"measures": WARNING_TEXTS["measures"].format(point=point_name),
                                 "deadline": "2026-12-31"})]
        if n == 0:
            plan.append(("review", head, {"review_decision": "approve", "review_opinion": WARNING_TEXTS["review"]}))
        _advance(instance_id, plan)


WARNING_TEXTS = {
    "cause": "{point}未达标准值：近两年新进教师多为应届毕业生，企业实践经历不足，相关工作推进滞后。",
    "measures": "制定{point}专项提升计划：安排青年教师暑期到合作企业实践，聘请企业工程师为兼职教师，每月跟踪监测。",
    "review": "措施可行，请按期落实。",
}


def _head_of(org_unit_id: int, people: dict) -> int:
    unit = db.session.get(OrgUnit, org_unit_id)
    codes = dict(db.session.execute(sa.select(OrgUnit.id, OrgUnit.code)).all())
    for ancestor in reversed(unit.ancestor_ids()):
        if codes.get(ancestor) in people["heads"]:
            return people["heads"][codes[ancestor]]
    return people["ids"][PRESIDENT[0]]


# -- the program level's cycle -----------------------------------------------------------------------

def _advance(instance_id: int, plan: list[tuple[str, User, dict]]) -> None:
    """Complete the instance's ready tasks while they are the next ones of the plan (idempotent)."""
    from hall.processes import services as processes
    from hall.tasks import services as tasks
    from hall.tasks.models import HumanTask

    steps = {element: (user, data) for element, user, data in plan}
    done: set[str] = set()
    for _ in range(len(plan) + 2):  # bounded: each pass completes one step or stops
        task = db.session.scalar(sa.select(HumanTask).where(
            HumanTask.instance_id == instance_id, HumanTask.state == "ready", HumanTask.kind == "user")
            .order_by(HumanTask.id))
        if task is None:
            if not processes.fire_due_timers():  # the 实施 timer: the period has ended
                return
            continue
        if task.element_id not in steps or task.element_id in done:
            return
        user, data = steps[task.element_id]
        tasks.complete_task(task.id, user, data, task.version)
        done.add(task.element_id)


# What each step's person writes (plausible texts; {name} is the program's name).
STEP_TEXTS = {
    "target_summary": "对接学院目标链，{name}专业本学年重点提升就业质量与双师队伍建设。",
    "review_opinion": "目标与学院目标一致，同意。",
    "standard_note": "采用学院专业建设运行标准，质控点阈值不作调整。",
    "design_plan": "修订{name}专业人才培养方案，新增 2 门岗课赛证融通课程；与 3 家合作企业共建实训项目。",
    "design_milestones": "10 月完成方案论证，12 月完成实训项目开发。",
    "organise_responsibilities": "专业负责人统筹；各课程负责人落实课程改革；实训室主任负责实训项目开出。",
    "organise_resources": "申请专项经费 20 万元。",
    "implement_progress": "人才培养方案已修订并实施；实训开出率 98%；4 名教师完成企业实践。",
    "diagnosis_text": "就业率、实训开出率达到目标值；双师素质教师比例略低于标准值。",
    "diagnosis_problems": "青年教师企业实践经历不足，双师认定滞后。",
    "incentive_measures": "专业团队年度考核加分。",
    "accountability": "无。",
    "learn_text": "组织团队学习兄弟院校专业群建设经验，参加省诊改培训。",
    "innovate_text": "试行“企业导师+校内导师”双导师制。",
    "improve_text": "下一周期重点补齐双师队伍短板。",
}


def _unit_plan(name: str, targets: list[dict], owner: User, head: User, until: str) -> list[tuple[str, User, dict]]:
    """The tasks of the big loop with plausible texts, up to (not including) step *until* ('end': all)."""

    def text(*fields):
        return {f: STEP_TEXTS[f].format(name=name) for f in fields}

    steps = [
        ("target", owner, {"targets": targets, **text("target_summary")}),
        ("target_review", head, {"review_decision": "approve", **text("review_opinion")}),
        ("standard", owner, {"standard_confirmed": True, **text("standard_note")}),
        ("design", owner, text("design_plan", "design_milestones")),
        ("organise", owner, text("organise_responsibilities", "organise_resources")),
        ("implement", owner, text("implement_progress")),
        ("diagnose", owner, text("diagnosis_text", "diagnosis_problems")),
        ("incentive", head, {"grade": "良好", **text("incentive_measures", "accountability")}),
        ("learn", owner, text("learn_text")),
        ("innovate", owner, text("innovate_text")),
        ("improve", owner, {"improvements": [{"text": f"{name}专业双师素质教师比例达到 60%", "point": "PRG-SS",
                                              "target_value": 60}], **text("improve_text")}),
    ]
    if until == "end":
        return steps
    return steps[:[s[0] for s in steps].index(until)]


# Where each program's unit is taken in the demo (the others stay at 目标).
UNIT_STEPS = {"软件技术": "diagnose", "计算机网络技术": "design", "电气自动化技术": "design",
              "大数据与会计": "end", "电子商务": "target_review", "机电一体化技术": "implement"}


def _cycle(subjects: dict, people: dict) -> None:
    """The program level's 2025-2026 cycle, opened by the quality office, with units at different steps."""
    from hall.quality import cycles

    quality_office = db.session.scalar(sa.select(User).where(User.username == "q4001"))
    today = utcnow().date()
    deadlines = {step: (today + timedelta(days=days)).isoformat() for step, days in (
        ("target", 14), ("standard", 21), ("design", 35), ("organise", 42), ("implement", 60), ("diagnose", 75),
        ("incentive", 82), ("learn", 89), ("innovate", 96), ("improve", 103))}
    cycle = cycles.open_cycle("program", CYCLE_PERIOD, quality_office, deadlines=deadlines)
    if cycle.state in ("opening", "failed"):
        cycles.open_units(cycle.id)  # with a broker the job runs elsewhere; the demo needs the units now
    units = dict(db.session.execute(
        sa.select(CycleUnit.subject_id, CycleUnit.instance_id).where(CycleUnit.cycle_id == cycle.id)).all())
    drafts = {}
    for subject_id, text, code, value in db.session.execute(
            sa.select(Target.subject_id, Target.text, MonitoringPoint.code, Target.target_value)
            .join(MonitoringPoint, MonitoringPoint.id == Target.point_id)
            .where(Target.period == CYCLE_PERIOD).order_by(Target.id)).all():
        drafts.setdefault(subject_id, []).append({"text": text, "point": code, "target_value": value})
    for index, (code, name, _prefix, dept, *_rest) in enumerate(PROGRAMS):
        until = UNIT_STEPS.get(name)
        subject_id = subjects["program"][code]
        if until is None or subject_id not in units:
            continue
        owner = db.session.get(User, people["ids"][people["leaders"][index]])
        head = db.session.get(User, people["heads"][dept])
        targets = drafts.get(subject_id) or [{"text": f"{name}专业就业率达到 96%", "point": "PRG-JY",
                                              "target_value": 96}]
        _advance(units[subject_id], _unit_plan(name, targets, owner, head, until))
