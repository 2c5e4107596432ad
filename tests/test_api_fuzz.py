"""Every API route, fed odd values: no 5xx. The request bodies of every POST, PUT and PATCH (each field of its
documented schema in turn, alone and beside the others) and the query parameters of every GET, from the
OpenAPI document, so a new route is covered the day it is added. Signed in as the administrator and as a
teacher, who stay signed in (sign-out is left out); path ids are 1."""

from __future__ import annotations

import re

from tests import test_tasks_api as _tasks
from tests.conftest import Api

people, solo = _tasks.people, _tasks.solo

BODY_VALUES = [None, "", "x" * 300, -1, 0, 2**31, 2**31 - 1, 1e308, -1e308, 0.5, True, [], {}, "2026-13-45",
               "\u202e", [1, "a", None], {"a": {"b": 1}}, "2026-11-27", "2026-11-27T08:00:00", "zz_unknown"]
QUERY_VALUES = ["", "x" * 300, "-1", "0", str(2**31), str(10**30), "1e308", "true", "2026-13-45", "2026-11-27",
                "\u202e", "%", "'", "a,b"]


def _schema(spec: dict, operation: dict) -> dict:
    schema = (operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
              or {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _bodies(fields: list[str]) -> list:
    bodies: list = [{}, [], "x", None]
    for field in fields:
        for value in BODY_VALUES:
            bodies.append({field: value})
            bodies.append({**dict.fromkeys(fields, "x"), field: value})
    return bodies


def test_no_api_route_answers_odd_values_with_a_5xx(people, solo, app):
    teacher, admin = people("t1001"), Api(app).login("admin")
    _tasks.start(teacher, solo)
    spec = admin.get("openapi.json").get_json()
    failures = []
    for path, operations in spec["paths"].items():
        route = re.sub(r"\{[^}]+\}", "1", path).removeprefix("/api/v1/")
        if route == "auth/logout":  # would end the sessions the rest of the run needs
            continue
        for method, operation in operations.items():
            if method in ("post", "put", "patch"):
                fields = list(_schema(spec, operation).get("properties") or {})
                calls = [(method, body, None) for body in _bodies(fields)]
            elif method == "get":
                names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
                calls = [("get", None, {name: value}) for name in names for value in QUERY_VALUES]
            else:
                continue
            for client in (admin, teacher):
                for verb, body, query in calls:
                    response = (client.get(route, query_string=query) if verb == "get"
                                else getattr(client, verb)(route, body))
                    if response.status_code >= 500:
                        failures.append((verb, route, body if verb != "get" else query, response.status_code))
    assert not failures, failures[:10]
    # Both were signed in throughout (a 401 everywhere would have proved nothing).
    assert admin.get("me").status_code == 200 and teacher.get("me").status_code == 200
