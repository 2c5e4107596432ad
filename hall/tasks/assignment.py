"""Who gets a new task: lanes name roles, resolved against the instance's org unit and subject.

Resolution order for a user task:
1. extension property `assignee` (a username) or `assigneeExpression` (evaluated over task data by the
   engine's sandbox beforehand and passed in as `assignee` data) — one person;
2. properties `candidateUsers` / `candidateGroups` (comma-separated usernames / role codes);
3. the lane: `applicant` (or `starter`) is the person who started the instance; `subject_owner` is the
   subject's responsible person; any other lane is a role code, resolved to the nearest unit, from the
   instance's org unit upwards, where somebody holds that role ("the head of *this* department").
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from hall.accounts.models import Role, User
from hall.extensions import db
from hall.org.models import Membership, OrgUnit

STARTER_LANES = {"applicant", "starter", "申请人", "发起人"}
SUBJECT_OWNER_LANE = "subject_owner"


def lane_labels() -> dict[str, str]:
    """What a person reads for each lane name a diagram may use: the role's name for a role code, 申请人 for
    the starter's lane, 责任人 for the subject owner's."""
    labels = {code: name for code, name in db.session.execute(sa.select(Role.code, Role.name))}
    labels.update({lane: "申请人" for lane in STARTER_LANES})
    labels[SUBJECT_OWNER_LANE] = "责任人"
    return labels


@dataclass
class Assignment:
    assignee_id: int | None
    candidates: list[tuple[int | None, str | None, int | None]]  # (user_id, role_code, org_unit_id)


class AssignmentResolver:
    """Resolves assignments for one operation; remembers lookups so a request asks each question once."""

    def __init__(self, instance):
        self.instance = instance
        self._role_units: dict[str, int | None] = {}
        self._ancestors: list[int] | None = None

    def resolve(self, lane: str | None, properties: dict, data: dict) -> Assignment:
        username = properties.get("assignee") or _from_data(properties.get("assigneeVariable"), data)
        if username:
            user_id = _user_id(username)
            if user_id:
                return Assignment(user_id, [(user_id, None, None)])
        candidates: list[tuple[int | None, str | None, int | None]] = []
        users = _split(properties.get("candidateUsers")) + \
            _split(_from_data(properties.get("candidateUsersVariable"), data))
        if users:
            ids = db.session.scalars(sa.select(User.id).where(User.username.in_(users))).all()
            candidates += [(uid, None, None) for uid in ids]
        for role in _split(properties.get("candidateGroups")):
            candidates.append((None, role, self.unit_for_role(role)))
        if candidates:
            only_user = [c for c in candidates if c[0] is not None]
            assignee = only_user[0][0] if len(candidates) == 1 and only_user else None
            return Assignment(assignee, candidates)
        if lane:
            lane_key = lane.strip()
            if lane_key in STARTER_LANES and self.instance.starter_id:
                return Assignment(self.instance.starter_id, [(self.instance.starter_id, None, None)])
            if lane_key == SUBJECT_OWNER_LANE:
                owner = subject_owner(self.instance.subject_id)
                if owner:
                    return Assignment(owner, [(owner, None, None)])
            return Assignment(None, [(None, lane_key, self.unit_for_role(lane_key))])
        # No lane and no properties: the starter handles it (single-person flows, tests).
        return Assignment(self.instance.starter_id, [(self.instance.starter_id, None, None)])

    def ancestors(self) -> list[int]:
        if self._ancestors is None:
            unit = db.session.get(OrgUnit, self.instance.org_unit_id) if self.instance.org_unit_id else None
            self._ancestors = unit.ancestor_ids() if unit else []
        return self._ancestors

    def unit_for_role(self, role: str) -> int | None:
        """The nearest unit upwards holding the role; None means college-wide holders of the role."""
        if role not in self._role_units:
            ancestors = self.ancestors()
            found = None
            if ancestors:
                held = set(db.session.scalars(
                    sa.select(Membership.org_unit_id).where(
                        Membership.role_code == role, Membership.org_unit_id.in_(ancestors)
                    )
                ).all())
                found = next((unit for unit in ancestors if unit in held), None)
            self._role_units[role] = found
        return self._role_units[role]


def _split(value) -> list[str]:
    if not value:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _from_data(variable: str | None, data: dict):
    return data.get(variable) if variable else None


def _user_id(username: str) -> int | None:
    return db.session.scalar(sa.select(User.id).where(User.username == str(username)))


def subject_owner(subject_id: int | None) -> int | None:
    """The responsible person of a quality subject, when the quality domain is installed."""
    if not subject_id:
        return None
    try:
        from hall.quality import services as quality
    except ImportError:
        return None
    return quality.responsible_user_id(subject_id)
