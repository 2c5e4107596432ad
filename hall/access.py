"""Who may call which endpoint: the one place that states the access rules of the hall.

Every endpoint (Flask's `request.endpoint`, e.g. "tasks.complete", "web.home", "admin.user_list") has a
rule in RULES:

- PUBLIC: anybody, signed in or not (sign-in pages, sign-on callbacks, the CSRF token, static assets).
- SIGNED_IN: any signed-in person.
- roles(...): a signed-in person holding one of the role codes (college-wide or in any unit).

A rule may also name the object-level check its service makes (`check=`), e.g. "instance_visible": the
role gate lets the request through, and the service answers 404 (or 403) when the person may not see or
act on that particular object. The checks, by name:

- instance_visible: the instance's starter, the people who hold or held one of its tasks (or are its
  candidates), the heads of the department whose subtree holds the instance's org unit, the roles its
  process definition names in the process-level property `visibleTo` (e.g. the quality office and the
  supervisors read every unit's diagnosis_cycle and warning_handling instances), and administrators.
  Private flows (leave_request) name no `visibleTo`, so the quality office gets 404 on someone's leave.
- instance_starter: only the starter (withdraw, urge).
- task_visible / task_actor: the task's assignee, candidates, and people who may see its instance (read);
  only the assignee or a candidate may act.
- subject_visible: quality subjects the person is responsible for, a head's department subtree, and
  everything for the quality office, supervisors and administrators (QUALITY_READERS).
- subject_owner: the quality office or the subject's responsible person (targets).
- unit_visible: a head's own department subtree, everything for QUALITY_READERS.
- own_message: the person's own messages only.
- startable: the definition's `startableBy` roles.

The runtime hook (`init_app`, installed by create_app) enforces the role gates on every request: a
signed-in person whose roles do not match gets 403 (logged as permission_denied); an anonymous caller of a
non-public endpoint gets the sign-in answer (401 JSON / redirect). Object-level checks stay in the
services. An endpoint without a rule is let through for signed-in people and logged as a warning;
tests/identity/test_route_matrix.py is what refuses a route added without a rule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Flask, current_app, g, request
from flask_login import current_user

log = logging.getLogger(__name__)

DENIED_MESSAGE = "您没有权限使用此功能"
# Set on the gate's own refusals, so a test can tell them from a service's object-level 403.
DENIED_HEADER = "X-Hall-Access"

# The eight roles of the access model (DESIGN §7); colleges may add groups (hr, office, …) for lanes.
ROLES = ("admin", "quality_office", "dept_head", "program_leader", "course_leader", "teacher", "student",
         "supervisor")
QUALITY_MANAGERS = frozenset({"admin", "quality_office"})
# Read quality data of every unit; supervisors (督导) read like the quality office but change nothing.
QUALITY_READERS = QUALITY_MANAGERS | {"supervisor"}
ADMIN = frozenset({"admin"})


@dataclass(frozen=True)
class Rule:
    """Who passes the gate of an endpoint; `check` names the object-level check its service makes."""

    public: bool = False
    roles: frozenset = field(default_factory=frozenset)  # empty: any signed-in person
    check: str | None = None
    message: str | None = None  # the refusal, in the words the person sees (a default when None)

    def admits(self, role_codes: set[str]) -> bool:
        return not self.roles or bool(self.roles & role_codes)

    def describe(self) -> str:
        who = "public" if self.public else ("roles " + ",".join(sorted(self.roles)) if self.roles else "signed-in")
        return who + (f" + {self.check}" if self.check else "")


PUBLIC = Rule(public=True)
SIGNED_IN = Rule()


def signed_in(check: str | None = None) -> Rule:
    return Rule(check=check)


def roles(*codes: str, check: str | None = None, message: str | None = None) -> Rule:
    return Rule(roles=frozenset(codes), check=check, message=message)


_MANAGERS = tuple(QUALITY_MANAGERS)
_READERS = tuple(QUALITY_READERS)

ADMIN_PAGE = roles("admin", message="只有系统管理员可以访问此页面")
ADMIN_ACTION = roles("admin", message="只有系统管理员可以执行此操作")
USERS = roles("admin", message="只有系统管理员可以管理用户")
TOKENS = roles("admin", message="只有系统管理员可以管理 API 令牌")
QUALITY_CHANGE = roles(*_MANAGERS, message="只有质量办或系统管理员可以修改质量数据")

RULES: dict[str, Rule] = {
    # -- sign-in, sign-on, assets, API docs
    "static": PUBLIC,
    "web.login": PUBLIC,
    "web.favicon": PUBLIC,
    "web.logout": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.csrf": PUBLIC,
    "auth.Me": SIGNED_IN,
    "sso.cas_login": PUBLIC,
    "sso.cas_callback": PUBLIC,  # also the CAS server's single-logout POST
    "sso.oidc_login": PUBLIC,
    "sso.oidc_callback": PUBLIC,
    "sso.logout": PUBLIC,
    "api-docs.openapi_json": PUBLIC,
    "api-docs.openapi_swagger_ui": PUBLIC,
    # -- the hall's pages
    "web.home": SIGNED_IN,
    "web.services": SIGNED_IN,
    "web.start": signed_in("startable"),
    "web.task_list": SIGNED_IN,
    "web.mine": SIGNED_IN,
    "web.task": signed_in("task_visible"),
    "web.task_action": signed_in("task_actor"),
    "web.instance": signed_in("instance_visible"),
    "web.instance_action": signed_in("instance_starter"),
    "web.task_attach": signed_in("task_actor"),
    "web.attachment": signed_in("task_visible"),
    "messages_web.message_list": SIGNED_IN,
    "messages_web.open_message": signed_in("own_message"),
    "messages_web.read_all": SIGNED_IN,
    # Quality pages: anybody may open them and sees the subjects they may see.
    "quality_web.index": signed_in("subject_visible"),
    "quality_web.cycle_list": SIGNED_IN,
    "quality_web.cycle_dashboard": signed_in("subject_visible"),
    "quality_web.portrait_overview": signed_in("unit_visible"),
    "quality_web.subject": signed_in("subject_visible"),
    "quality_web.warning_list": signed_in("subject_visible"),
    "quality_web.point_list": roles(*_READERS, message="只有质量办、督导或系统管理员可以查看质控点"),
    "quality_web.point_edit": QUALITY_CHANGE,
    # -- administration pages
    "admin.index": ADMIN_PAGE,
    "admin.process_list": ADMIN_PAGE,
    "admin.modeler": ADMIN_PAGE,
    "admin.form_list": ADMIN_PAGE,
    "admin.form_file": ADMIN_PAGE,
    "admin.form_edit": ADMIN_PAGE,
    "admin.form_preview": ADMIN_PAGE,
    "admin.process_enabled": ADMIN_PAGE,
    "admin.user_list": ADMIN_PAGE,
    "admin.user_create": ADMIN_PAGE,
    "admin.user_active": ADMIN_PAGE,
    "admin.user_edit": ADMIN_PAGE,
    "admin.user_password": ADMIN_PAGE,
    "admin.user_role_add": ADMIN_PAGE,
    "admin.user_role_remove": ADMIN_PAGE,
    "admin.role_list": ADMIN_PAGE,
    "admin.unit_list": ADMIN_PAGE,
    # -- API: processes
    "processes.list_definitions": SIGNED_IN,
    "processes.versions": SIGNED_IN,
    "processes.version_bpmn": SIGNED_IN,
    "processes.deploy": roles("admin", message="只有系统管理员可以部署流程"),
    "processes.set_enabled": roles("admin", message="只有系统管理员可以停用或启用流程"),
    "processes.validate": roles("admin", message="只有系统管理员可以校验流程"),
    "processes.catalogue": SIGNED_IN,
    "processes.start": signed_in("startable"),
    "processes.list_instances": signed_in("instance_visible"),
    "processes.detail": signed_in("instance_visible"),
    "processes.suspend": ADMIN_ACTION,
    "processes.resume": ADMIN_ACTION,
    "processes.terminate": ADMIN_ACTION,
    "processes.retry": ADMIN_ACTION,
    "processes.withdraw": signed_in("instance_starter"),
    "processes.urge": signed_in("instance_starter"),
    # -- API: tasks
    "tasks.inbox": SIGNED_IN,
    "tasks.get": signed_in("task_visible"),
    "tasks.comments": signed_in("task_visible"),
    "tasks.attachments": signed_in("task_visible"),
    "tasks.download": signed_in("task_visible"),
    "tasks.claim": signed_in("task_actor"),
    "tasks.release": signed_in("task_actor"),
    "tasks.complete": signed_in("task_actor"),
    "tasks.draft": signed_in("task_actor"),
    "tasks.return_": signed_in("task_actor"),
    "tasks.transfer": signed_in("task_actor"),
    "tasks.add_signer": signed_in("task_actor"),
    "tasks.delegates": signed_in("task_actor"),
    "tasks.comment": signed_in("task_visible"),
    "tasks.attach": signed_in("task_actor"),
    # -- API: quality reference data (read by all, changed by the quality office)
    "quality.levels": SIGNED_IN,
    "quality.list_standards": SIGNED_IN,
    "quality.create_standard": QUALITY_CHANGE,
    "quality.list_points": SIGNED_IN,
    "quality.get_point": SIGNED_IN,
    "quality.create_point": QUALITY_CHANGE,
    "quality.update_point": QUALITY_CHANGE,
    "quality.set_override": QUALITY_CHANGE,
    "quality.effective": signed_in("subject_visible"),
    "quality.list_subjects": signed_in("subject_visible"),
    "quality.get_subject": signed_in("subject_visible"),
    "quality.create_subject": QUALITY_CHANGE,
    "quality.list_targets": signed_in("subject_visible"),
    "quality.create_target": signed_in("subject_owner"),
    "quality.record_measurements": QUALITY_CHANGE,
    "quality.import_file": QUALITY_CHANGE,
    "quality.list_warnings": signed_in("subject_visible"),
    "quality.get_warning": signed_in("subject_visible"),
    # -- API: cycles, portraits, reports
    "cycles.open_cycle": roles(*_MANAGERS, message="只有质量管理办公室可以开启诊改周期"),
    "cycles.list_cycles": SIGNED_IN,
    "cycles.get_cycle": SIGNED_IN,
    "cycles.progress": signed_in("subject_visible"),
    "reports.subject_portrait": signed_in("subject_visible"),
    "reports.aggregate_portraits": signed_in("unit_visible"),
    "reports.self_diagnosis_report": signed_in("subject_visible"),
    "reports.department_report": signed_in("unit_visible"),
    "reports.college_report": roles(*_READERS, message="只有质量办、督导或系统管理员可以查看学院年度质量报告"),
    # -- API: messages, tokens, audit
    "messages.list_messages": SIGNED_IN,
    "messages.read": signed_in("own_message"),
    "messages.read_all": SIGNED_IN,
    "messages.get_channels": SIGNED_IN,
    "messages.put_channels": SIGNED_IN,
    "messages.verify_channel_address": SIGNED_IN,
    "tokens.create_token": TOKENS,
    "tokens.list_tokens": TOKENS,
    "tokens.revoke_token": TOKENS,
    "users.list_users": USERS,
    "users.create_user": USERS,
    "users.update_user": USERS,
    "users.reset_password": USERS,
    "users.add_membership": USERS,
    "users.remove_membership": USERS,
    "audit.list_audit": roles("admin", message="只有系统管理员可以查看审计日志"),
}


def rule_for(endpoint: str | None) -> Rule | None:
    return RULES.get(endpoint or "")


# -- helpers for services ------------------------------------------------------------------------------

def sees_all_quality(user) -> bool:
    """Whether *user* reads every unit's quality data (cycles, portraits, warnings, reports)."""
    return user.has_role(*QUALITY_READERS)


def head_unit_ids(user) -> list[int]:
    """The units *user* heads as dept_head (his department subtrees start there)."""
    return [m.org_unit_id for m in user.memberships if m.role_code == "dept_head" and m.org_unit_id]


def visible_to_roles(value: str | None) -> list[str]:
    """The role codes of a process-level role list (`visibleTo`, `startableBy`: "quality_office, supervisor")."""
    return [r.strip() for r in (value or "").split(",") if r.strip()]


# -- the runtime gate ----------------------------------------------------------------------------------

def _gate():
    g.pop("audit_logged", None)  # tests share `g` across requests; a flag from an earlier one must not leak
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: the 404/405 answer follows
        return None
    rule = RULES.get(endpoint)
    if rule is None:
        if current_user.is_authenticated:
            log.warning("endpoint %s has no access rule in hall/access.py; let through", endpoint)
        return None
    if rule.public:
        return None
    if not current_user.is_authenticated:
        from hall.extensions import login_manager

        return login_manager.unauthorized()
    # Only role gates read the memberships: the common signed-in endpoints (a task submit) stay one query lighter.
    if rule.roles and not rule.admits(current_user.role_codes):
        from hall.audit import services as audit
        from hall.errors import Forbidden

        message = rule.message or DENIED_MESSAGE
        audit.record("permission_denied", current_user.username, endpoint=endpoint, needed=sorted(rule.roles),
                     message=message)
        g.audit_logged = True  # the generic 403 logger of hall/security.py stays quiet
        # The app's own error handler shapes the answer (JSON for the API, a page for the hall).
        response = current_app.make_response(current_app.handle_user_exception(Forbidden(message)))
        response.headers[DENIED_HEADER] = "denied"
        return response
    return None


def init_app(app: Flask) -> None:
    """Install the role gate; it runs after hall/security.py's hooks (token and CSRF checks)."""
    app.before_request(_gate)
