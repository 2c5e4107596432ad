"""Every route of the app against every role: the answer matches the rule hall/access.py states for it.

Routes come from app.url_map (all but static files and the OpenAPI docs); each is called once per method
by anonymous and by one person of each of the eight roles, with its path filled with ids of real objects
(a teacher's leave and its task, a diagnosis cycle and unit, a subject, a warning, a token…) and, for a
state-changing method, an empty body with the session's CSRF token. Deny is 401 (or the sign-in redirect)
for anonymous and 403/404 for a signed-in person; allow is anything but those. A rule that names an
object-level check may still be refused by its service (a 403 or 404 on an object that is not the
person's); only the gate's own refusal (hall/access.py DENIED_HEADER) then counts as a deny. A route with
no rule fails here, by name.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hall import create_app
from hall.access import DENIED_HEADER, RULES, Rule
from hall.extensions import db
from tests.conftest import Api, reset_database
from tests.identity.test_object_access import PEOPLE, build_college

IDENTITIES = ["anonymous", *PEOPLE]
SKIPPED_ENDPOINTS = {"static"}
SKIPPED_PREFIXES = ("api-docs.",)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Endpoints that sign in or out: each call gets a fresh session, so the people's clients stay signed in.
SESSION_CHANGING = {"auth.login", "auth.logout", "web.login", "web.logout", "sso.logout"}
# Signing out ends on the sign-in page: there that redirect is the answer, not a refusal.
LANDS_ON_LOGIN = {"web.logout", "sso.logout"}
# Bodies where an empty one would only test a failed sign-in (x9001 is a spare teacher of the college).
BODIES = {"auth.login": {"username": "x9001", "password": "hall2026"},
          "web.login": {"username": "x9001", "password": "hall2026"}}
# Values of <any(...)> path parts where the first choice would be needlessly destructive.
CHOICES = {("web.instance_action", "action"): "urge", ("admin.user_active", "action"): "deactivate",
           # enabling an enabled process changes nothing, so the routes after it still find leave_request startable
           ("processes.set_enabled", "action"): "enable", ("admin.process_enabled", "action"): "enable"}


def _routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) of every route under test, from an app built only to read its url_map."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "routes", "TESTING": True})
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS or rule.endpoint.startswith(SKIPPED_PREFIXES):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, rule.rule))
    return sorted(routes)


ROUTES = _routes()


def test_every_route_has_an_access_rule():
    """A route added without a rule in hall/access.py fails here, naming it."""
    missing = sorted({f"{endpoint} ({path})" for endpoint, _, path in ROUTES if endpoint not in RULES})
    assert not missing, "routes without a rule in hall/access.py RULES: " + ", ".join(missing)


def test_every_rule_names_a_route():
    """No rule is left behind for a route that no longer exists."""
    app_endpoints = {endpoint for endpoint, _, _ in ROUTES} | SKIPPED_ENDPOINTS
    stale = sorted(e for e in RULES if e not in app_endpoints and not e.startswith(SKIPPED_PREFIXES))
    assert not stale, "rules for unknown endpoints: " + ", ".join(stale)


# -- the matrix -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(app):
    """The college of test_object_access, plus the path values of every route and each person's roles."""
    from hall.accounts.models import User

    college = build_college(app)
    with app.app_context():
        roles = {name: db.session.scalar(sa.select(User).where(User.username == username)).role_codes
                 for name, username in PEOPLE.items()}
    values = {
        "instance_id": college["leave_xxgc"], "task_id": college["form_task"],
        "attachment_id": college["attachment"], "cycle_id": college["cycle"],
        "cycle_unit_id": college["cycle_unit"]["510201"], "subject_id": college["subject"]["510201"],
        "warning_id": college["warning"]["510201"], "point_id": college["point"],
        "org_unit_id": college["unit"]["xxgc"], "message_id": college["message"] or 1,
        "token_id": college["token"], "user_id": college["user"]["x9002"], "key": "leave_request", "number": 1,
        "fmt": "xlsx", "membership_id": 1,
    }
    yield {"values": values, "roles": roles}
    reset_database(app)


@pytest.fixture(autouse=True)
def clean_db():
    """The matrix works on the module's college; nothing is emptied per test."""
    yield


@pytest.fixture(scope="module")
def clients(app, world):
    """A signed-in client per role, and an anonymous one with a session CSRF token (for public forms)."""
    signed_in = {name: Api(app).login(username) for name, username in PEOPLE.items()}
    return signed_in


def _anonymous(app) -> Api:
    anonymous = Api(app)
    anonymous.client.get("/login")
    with anonymous.client.session_transaction() as session:
        anonymous.csrf = session.get("_csrf")
    return anonymous


def _path(app, endpoint: str, method: str, values: dict) -> str:
    rule = next(r for r in app.url_map.iter_rules(endpoint))
    args = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        choices = getattr(converter, "items", None)
        if choices:
            args[name] = CHOICES.get((endpoint, name), sorted(choices)[0])
        else:
            args[name] = values[name]
    return app.url_map.bind("localhost").build(endpoint, args, method=method)


def _call(client: Api, endpoint: str, method: str, path: str):
    if method not in UNSAFE:
        return client.client.open(path, method=method)
    body = BODIES.get(endpoint, {})
    if path.startswith("/api/"):
        return client.client.open(path, method=method, json=body, headers={"X-CSRF-Token": client.csrf or ""})
    return client.client.open(path, method=method, data={**body, "_csrf": client.csrf or ""})


def _to_login(response) -> bool:
    return response.status_code in (301, 302, 303) and "/login" in response.headers.get("Location", "")


def _verdict(endpoint: str, identity: str, rule: Rule, roles: set[str], response) -> str | None:
    """None when the answer fits the rule, else what went wrong."""
    status = response.status_code
    if endpoint in LANDS_ON_LOGIN and _to_login(response):
        return None if rule.public else f"{identity} was signed out by a non-public route"
    if identity == "anonymous":
        denied = status == 401 or _to_login(response)
        if rule.public:
            return f"public route refused anonymous ({status})" if denied or status == 403 else None
        return None if denied else f"anonymous was let in ({status})"
    allowed = rule.public or rule.admits(roles)
    gate_refused = response.headers.get(DENIED_HEADER) == "denied"
    if not allowed:
        return None if status in (403, 404) else f"{identity} should be refused but got {status}"
    if status == 401 or _to_login(response) or gate_refused:
        return f"{identity} should pass the gate but got {status}"
    if status == 403 and rule.check is None:
        return f"{identity} should be allowed (no object-level check) but got 403"
    return None


@pytest.mark.parametrize("endpoint, method, path", ROUTES, ids=[f"{m} {e}" for e, m, _ in ROUTES])
def test_route_answers_every_role_as_its_rule_says(app, world, clients, endpoint, method, path):
    """Anonymous and each of the eight roles get allow or deny on this route as hall/access.py states."""
    rule = RULES.get(endpoint)
    if rule is None:
        pytest.fail(f"route {endpoint} ({method} {path}) has no rule in hall/access.py RULES")
    url = _path(app, endpoint, method, world["values"])
    problems = []
    for identity in IDENTITIES:
        if identity == "anonymous":
            client = _anonymous(app)
        elif endpoint in SESSION_CHANGING:
            client = Api(app).login(PEOPLE[identity])
        else:
            client = clients[identity]
        response = _call(client, endpoint, method, url)
        problem = _verdict(endpoint, identity, rule, world["roles"].get(identity, set()), response)
        if problem:
            problems.append(f"{problem}: {response.get_data(as_text=True)[:160]!r}")
    assert not problems, f"{method} {url} ({endpoint}, rule {rule.describe()}):\n" + "\n".join(problems)
