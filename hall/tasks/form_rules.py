"""The hall's extension of JSON Schema for rules between fields, which the standard keywords cannot state.

A form's object schema may hold the keyword `x-compare`: a list of rules, each comparing one field of the
submission with a limit, e.g.

    "x-compare": [
      {"field": "end_date", "op": ">=", "value": {"field": "start_date"}},
      {"field": "days", "op": "<=", "value": {"daysBetween": ["start_date", "end_date"]},
       "message": "请假天数不能超过起止日期所跨的天数（{limit} 天）"},
      {"field": "stamped_copies", "op": "<=", "value": {"instance": "copies"}}
    ]

`op` is one of <=, <, >=, >. The limit (`value`) is another field of the same submission (`field`), a
variable of the instance as the task sees it, i.e. what earlier steps submitted (`instance`), or the
calendar days from one date field to another, both days counted (`daysBetween`). Numbers compare as
numbers, ISO dates as dates. A rule whose field or limit is missing or of another kind is skipped: the
standard keywords (required, type, format) already name that field. An error is reported on the rule's
field, in Chinese, with the rule's `message` (placeholders {title} and {limit}) or a default one.

The instance's data is not part of the submission; the validator reads it from INSTANCE_DATA, which the
caller sets for the duration of one validation (see hall.tasks.services.validate_form).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import date

from jsonschema import Draft202012Validator, ValidationError, validators

KEYWORD = "x-compare"
INSTANCE_DATA: ContextVar[dict | None] = ContextVar("form_instance_data", default=None)

_OPS = {
    "<=": (lambda a, b: a <= b, "{title}不能超过{limit}", "{title}不能晚于{limit}"),
    "<": (lambda a, b: a < b, "{title}须小于{limit}", "{title}须早于{limit}"),
    ">=": (lambda a, b: a >= b, "{title}不能小于{limit}", "{title}不能早于{limit}"),
    ">": (lambda a, b: a > b, "{title}须大于{limit}", "{title}须晚于{limit}"),
}


def reads_instance_data(schema: dict | None) -> bool:
    """Whether a rule of *schema* compares with instance data (so it must be validated with it)."""
    rules = (schema or {}).get(KEYWORD)
    return isinstance(rules, list) and any(
        isinstance(rule, dict) and isinstance(rule.get("value"), dict) and "instance" in rule["value"]
        for rule in rules)


def _comparable(value):
    """A number or a date from a submitted value, or None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _title(schema: dict, name: str) -> str:
    prop = (schema.get("properties") or {}).get(name)
    return (prop.get("title") if isinstance(prop, dict) else None) or name


def _limit(operand: dict, data: dict, schema: dict):
    """(limit value, its text for the message), or (None, '') when it cannot be had."""
    if isinstance(operand.get("field"), str):
        name = operand["field"]
        value = _comparable(data.get(name))
        return value, _title(schema, name)
    if isinstance(operand.get("instance"), str):
        value = _comparable((INSTANCE_DATA.get() or {}).get(operand["instance"]))
        return value, str(value)
    names = operand.get("daysBetween")
    if isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) for n in names):
        first, last = (_comparable(data.get(name)) for name in names)
        if isinstance(first, date) and isinstance(last, date) and last >= first:
            days = (last - first).days + 1
            return days, f"{days} 天"
    return None, ""


def compare(validator, rules, instance, schema):
    """The `x-compare` keyword: yields one error per broken rule, placed on the rule's field."""
    if not validator.is_type(instance, "object") or not isinstance(rules, list):
        return
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("op") not in _OPS or not isinstance(rule.get("value"), dict):
            continue
        name = rule.get("field")
        if not isinstance(name, str):  # a rule written wrongly in a deployed form is skipped, not a 500
            continue
        value = _comparable(instance.get(name))
        limit, limit_text = _limit(rule["value"], instance, schema)
        if value is None or limit is None or isinstance(value, date) != isinstance(limit, date):
            continue
        holds, number_text, date_text = _OPS[rule["op"]]
        if holds(value, limit):
            continue
        default = date_text if isinstance(value, date) else number_text
        try:
            message = str(rule.get("message") or default).format(title=_title(schema, name), limit=limit_text)
        except (KeyError, IndexError, ValueError):  # a message with other placeholders: the default one
            message = default.format(title=_title(schema, name), limit=limit_text)
        yield ValidationError(message, path=[name])


FormValidator = validators.extend(Draft202012Validator, {KEYWORD: compare})


_COMBINERS = ("allOf", "anyOf", "oneOf")


def declared_fields(schema: dict | None) -> dict[str, bool] | None:
    """The top-level fields a form defines (its `properties`, also those inside if/then/else, allOf, anyOf,
    oneOf and dependentSchemas), each with whether it is `readOnly` (filled by the hall, shown to the
    person: the measured values of a 诊断 step); None for an open form, one that defines no fields or that
    says `additionalProperties` is allowed."""
    if not isinstance(schema, dict):
        return None
    extra = schema.get("additionalProperties", False)
    if extra is True or isinstance(extra, dict):
        return None
    found: dict[str, bool] = {}

    def collect(node) -> None:
        if not isinstance(node, dict):
            return
        if isinstance(node.get("properties"), dict):
            for name, prop in node["properties"].items():
                read_only = isinstance(prop, dict) and prop.get("readOnly") is True
                found[name] = found.get(name, False) or read_only
        for key in ("if", "then", "else"):
            collect(node.get(key))
        for key in _COMBINERS:
            for part in node.get(key) or ():
                collect(part)
        for part in (node.get("dependentSchemas") or {}).values():
            collect(part)

    collect(schema)
    return found or None
