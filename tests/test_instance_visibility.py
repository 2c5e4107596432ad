"""Which instances a person finds in their list. The list finds them as one union of index scans (the
instances they started, took part in, head the unit of, or whose process their roles may read); the detail
page asks instance by instance (`can_see_instance`). Here every way of taking part happens — a task offered
to a role held college-wide or in a unit, claimed, completed, offered by name through a transfer — and the
two answers must agree for every demo person on every instance."""

from __future__ import annotations

import sqlalchemy as sa

from hall.accounts.models import User
from hall.extensions import db
from hall.org.demo import PEOPLE
from hall.processes import services as processes
from hall.processes.models import ProcessInstance
from tests.test_flows import LEAVE, SEAL, complete, start

EXTRA = "t9001"  # a teacher of the department jdgc itself (the demo's teachers belong to teaching offices)


def _agree(app) -> dict[str, set[int]]:
    """Each person's listed instance ids, after checking them against can_see_instance."""
    seen = {}
    with app.app_context():
        instances = db.session.scalars(sa.select(ProcessInstance)).all()
        for username in [person[0] for person in PEOPLE] + [EXTRA]:
            user = db.session.scalar(sa.select(User).where(User.username == username))
            listed, total = processes.list_instances(user, page_size=1000)
            may_open = {i.id for i in instances if processes.can_see_instance(i, user)}
            assert {i.id for i in listed} == may_open and total == len(may_open), username
            seen[username] = may_open
        db.session.remove()
    return seen


def test_the_list_and_the_detail_agree_on_who_sees_which_instance(app, api, demo, deploy_bpmn):
    from hall.accounts import services as accounts
    from hall.org.models import OrgUnit
    from tests.conftest import bpmn_sequence

    jdgc = db.session.scalar(sa.select(OrgUnit.id).where(OrgUnit.code == "jdgc"))
    accounts.create_user(EXTRA, "吴老师", "hall2026", org_unit_id=jdgc, roles=[("teacher", jdgc)])
    # A process whose one step is offered to the teachers of the starter's unit (a role held in a unit).
    deploy_bpmn(bpmn_sequence("teachers_step", 1, lane="teacher"), name="teachers_step.bpmn")
    # A step offered by name to two people, so nobody is assigned until one of them claims it.
    named_props = ("<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property "
                   'name="candidateUsers" value="t1002, r3001"/></spiffworkflow:properties></bpmn:extensionElements>')
    deploy_bpmn(bpmn_sequence("named_step", 1, extra_props=named_props), name="named_step.bpmn")
    seal = start(api, "seal_request")                       # t1001; reviews offered to office and legal roles
    complete(api, "t1001", "fill_form", SEAL)
    leave = start(api, "leave_request", "t1003")            # jdgc: the head of jdgc decides
    complete(api, "t1003", "fill_form", LEAVE)
    pooled = start(api, "teachers_step", "h2002")           # offered to the teachers of jdgc
    named = start(api, "named_step", "t1001")               # offered by name to t1002 and r3001
    transferred = start(api, "leave_request", "t1002")      # xxgc; its form is handed to t1003 by name
    api.login("t1002")
    form = api.get("tasks?view=mine").get_json()["items"][0]
    assert api.post(f"tasks/{form['id']}/transfer", {"username": "t1003"}).status_code == 200

    seen = _agree(app)
    # Through a role held college-wide, before anyone acted: 党政办 and the legal adviser see the seal request.
    assert seal["id"] in seen["o3002"] and seal["id"] in seen["l3003"]
    assert seal["id"] not in seen["s3004"] and seal["id"] not in seen["t1002"]
    # Through a role held in a unit: jdgc's teacher sees the step offered to jdgc's teachers; xxgc's do not.
    assert pooled["id"] in seen[EXTRA] and pooled["id"] not in seen["t1001"]
    # By name: both people the step names see it while nobody has claimed it.
    assert named["id"] in seen["t1002"] and named["id"] in seen["r3001"] and named["id"] not in seen["t1003"]
    # By name, through a transfer: t1003 now sees t1002's leave, whose form was handed to her.
    assert transferred["id"] in seen["t1003"] and transferred["id"] not in seen["t1001"]
    # A teacher does not see another department's leave; its head does.
    assert leave["id"] not in seen["t1001"] and leave["id"] in seen["h2002"]

    # Once the office has reviewed, it still sees the request (it completed a task of it).
    complete(api, "o3002", "office_review", {"office_approved": True, "office_opinion": "同意"})
    seen = _agree(app)
    assert seal["id"] in seen["o3002"]


def test_the_list_pages_alike_whether_it_reads_ids_first_or_counts(app, api, demo, monkeypatch):
    """Up to `_LISTED_IDS` visible instances the list reads their ids once and pages from them; past that it
    counts and pages in the database. Both give the same totals and pages (the cap lowered to force the
    second way), and a page past the end is empty with the total still right."""
    started = {username: [] for username in ("t1001", "t1003")}
    for username in ("t1001", "t1001", "t1003", "t1001"):
        started[username].append(start(api, "leave_request", username)["id"])

    def pages(username: str) -> list:
        with app.app_context():
            user = db.session.scalar(sa.select(User).where(User.username == username))
            listed = [processes.list_instances(user, page=page, page_size=2) for page in (1, 2, 3)]
            db.session.remove()
        return [([i.id for i in items], total) for items, total in listed]

    for username in ("t1001", "h2001", "admin"):
        ids_first = pages(username)
        monkeypatch.setattr(processes, "_LISTED_IDS", 1)
        counted = pages(username)
        monkeypatch.undo()
        assert ids_first == counted, username
    newest_first = sorted(started["t1001"], reverse=True)
    assert pages("t1001") == [(newest_first[:2], 3), (newest_first[2:], 3), ([], 3)]
