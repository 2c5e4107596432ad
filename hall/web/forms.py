"""Render a task's JSON Schema as HTML form fields, and turn posted form values back into typed data.

Only the top-level properties of an object schema become fields (plus arrays of objects as repeatable
rows); the server-side validation in hall.tasks.services stays the single judge of what is valid, so
conversion here never rejects anything: a value that cannot be converted is passed on as typed, and the
schema validation then names the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

RADIO_MAX_OPTIONS = 4
LONG_TEXT = 200
EXTRA_ROWS = 1  # empty rows offered under an array of objects


@dataclass
class Field:
    """One input as the template draws it."""

    name: str
    label: str
    widget: str  # text | textarea | number | date | email | radio | select | checkbox | rows | file
    required: bool = False
    help: str | None = None
    placeholder: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    value: Any = None
    errors: list[str] = field(default_factory=list)
    inputmode: str | None = None
    maxlength: int | None = None
    columns: list[Field] = field(default_factory=list)  # for rows: one Field per item property
    rows: list[list[Field]] = field(default_factory=list)


def _ui(ui_schema: dict | None, name: str) -> dict:
    node = (ui_schema or {}).get(name)
    return node if isinstance(node, dict) else {}


def _ordered(schema: dict, ui_schema: dict | None) -> list[str]:
    names = list((schema.get("properties") or {}).keys())
    order = (ui_schema or {}).get("ui:order")
    if isinstance(order, list):
        head = [n for n in order if n in names]
        return head + [n for n in names if n not in head]
    return names


def _options(prop: dict, ui: dict) -> list[tuple[str, str]]:
    if "enum" in prop:
        labels = ui.get("ui:enumNames") or prop.get("enumNames") or []
        return [(_text(v), labels[i] if i < len(labels) else _text(v)) for i, v in enumerate(prop["enum"])]
    choices = prop.get("oneOf") or prop.get("anyOf") or []
    return [(_text(c["const"]), c.get("title") or _text(c["const"])) for c in choices
            if isinstance(c, dict) and "const" in c]


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _field(name: str, prop: dict, ui: dict, required: bool, value: Any, errors: list[str]) -> Field:
    kind = prop.get("type")
    widget_hint = ui.get("ui:widget")
    f = Field(name=name, label=prop.get("title") or name, widget="text", required=required,
              help=ui.get("ui:help") or prop.get("description"), placeholder=ui.get("ui:placeholder"),
              value=value, errors=errors, maxlength=prop.get("maxLength"))
    options = _options(prop, ui)
    if widget_hint == "file" or prop.get("format") == "data-url":
        # Files are uploaded as the task's attachments (the 附件 card); the field points there.
        f.widget = "file"
    elif options:
        f.options = options
        f.widget = widget_hint if widget_hint in ("radio", "select") else (
            "radio" if len(options) <= RADIO_MAX_OPTIONS else "select")
        f.value = _text(value)
    elif kind == "boolean":
        f.widget = "checkbox" if widget_hint == "checkbox" else "radio"
        f.options = [("true", "是"), ("false", "否")]
        f.value = _text(value) if isinstance(value, bool) else (value or "")
    elif kind in ("number", "integer"):
        f.widget = "number"
        f.inputmode = "numeric" if kind == "integer" else "decimal"
        f.value = _text(value)
    elif kind == "string" and prop.get("format") == "date":
        f.widget = "date"
    elif kind == "string" and prop.get("format") == "email":
        f.widget = "email"
    elif widget_hint == "textarea" or (prop.get("maxLength") or 0) > LONG_TEXT:
        f.widget = "textarea"
    if f.widget in ("text", "textarea", "date", "email"):
        f.value = _text(value) if not isinstance(value, (dict, list)) else ""
    return f


def build_fields(schema: dict | None, ui_schema: dict | None, values: dict | None,
                 errors: dict | None) -> list[Field]:
    """The fields of *schema*, filled with *values* and annotated with *errors* ({field: [messages]})."""
    if not schema or schema.get("type", "object") != "object":
        return []
    values = values or {}
    errors = errors or {}
    required = set(schema.get("required") or [])
    fields = []
    for name in _ordered(schema, ui_schema):
        prop = schema["properties"][name] or {}
        ui = _ui(ui_schema, name)
        if ui.get("ui:widget") == "hidden" or prop.get("readOnly"):
            continue
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        if prop.get("type") == "array" and items.get("type") == "object":
            fields.append(_rows_field(name, prop, items, ui, name in required, values.get(name), errors))
            continue
        messages = list(errors.get(name, []))
        fields.append(_field(name, prop, ui, name in required, values.get(name), messages))
    return fields


def defaults(schema: dict | None) -> dict:
    """The `default` values the schema gives its top-level fields (what a fresh form starts with)."""
    props = (schema or {}).get("properties") or {}
    return {name: prop["default"] for name, prop in props.items() if isinstance(prop, dict) and "default" in prop}


def _rows_field(name, prop, items, ui, required, value, errors) -> Field:
    item_ui = ui.get("items") if isinstance(ui.get("items"), dict) else {}
    item_required = set(items.get("required") or [])
    order = _ordered(items, item_ui)
    rows_value = value if isinstance(value, list) else []
    f = Field(name=name, label=prop.get("title") or name, widget="rows", required=required,
              help=ui.get("ui:help") or prop.get("description"), errors=list(errors.get(name, [])))
    for i in range(len(rows_value) + EXTRA_ROWS):
        row_value = rows_value[i] if i < len(rows_value) and isinstance(rows_value[i], dict) else {}
        f.rows.append([
            _field(f"{name}.{i}.{sub}", items["properties"][sub] or {}, _ui(item_ui, sub), sub in item_required,
                   row_value.get(sub), list(errors.get(f"{name}.{i}.{sub}", [])))
            for sub in order
        ])
    return f


def _convert(prop: dict, raw: str | None, present: bool, ui: dict):
    """(keep, value): an empty input is left out so that `required` catches it."""
    kind = prop.get("type")
    if kind == "boolean":
        if ui.get("ui:widget") == "checkbox":
            return True, present and raw not in ("", "false", "0")
        if raw in ("true", "false"):
            return True, raw == "true"
        return False, None
    if raw is None:
        return False, None
    raw = raw.strip() if kind != "string" or prop.get("format") else raw
    if raw == "" or (kind == "string" and raw.strip() == ""):
        return False, None
    options = prop.get("enum") or [c.get("const") for c in (prop.get("oneOf") or []) if isinstance(c, dict)]
    for option in options:
        if _text(option) == raw:
            return True, option
    if kind == "integer":
        try:
            return True, int(raw)
        except ValueError:
            try:
                number = float(raw)
                return True, int(number) if number.is_integer() else number
            except ValueError:
                return True, raw  # the schema check answers "应为整数"
    if kind == "number":
        try:
            number = float(raw)
            return True, int(number) if number.is_integer() else number
        except ValueError:
            return True, raw
    return True, raw


def parse_form(schema: dict | None, ui_schema: dict | None, form: MultiDict) -> dict:
    """Typed data from posted values: numbers, integers and booleans converted by the schema type."""
    if not schema:
        return {}
    data: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop or {}
        ui = _ui(ui_schema, name)
        if ui.get("ui:widget") == "hidden" or prop.get("readOnly"):
            continue
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        if prop.get("type") == "array" and items.get("type") == "object":
            data[name] = _parse_rows(name, items, ui, form)
            continue
        keep, value = _convert(prop, form.get(name), name in form, ui)
        if keep:
            data[name] = value
    return data


def _parse_rows(name: str, items: dict, ui: dict, form: MultiDict) -> list[dict]:
    item_ui = ui.get("items") if isinstance(ui.get("items"), dict) else {}
    indexes = sorted({int(k.split(".")[1]) for k in form if k.startswith(name + ".") and k.split(".")[1].isdigit()})
    rows = []
    for i in indexes:
        row = {}
        for sub, prop in (items.get("properties") or {}).items():
            key = f"{name}.{i}.{sub}"
            keep, value = _convert(prop or {}, form.get(key), key in form, _ui(item_ui, sub))
            if keep:
                row[sub] = value
        if any(v not in (None, False, "") for v in row.values()):  # a row left empty is dropped
            rows.append(row)
    return rows


# What the hall itself writes into a step's data when it is returned (hall.tasks.services.return_task).
RETURN_REASON = "return_reason"
RETURN_REASON_LABEL = "退回理由"
RETURNED_LABEL = "退回"


def readable(schema: dict | None, data: dict | None, ui_schema: dict | None = None,
             returned: tuple[str, Any] | None = None) -> list[tuple[str, str]]:
    """(label, text) pairs of submitted data for read-only display, in the schema's order; choices are shown
    by their labels (the UI schema's ui:enumNames when it gives them). *returned* is the step's (return
    variable, return value): a step completed by 退回 shows that value as 退回, and its reason as 退回理由."""
    data = data or {}
    props = (schema or {}).get("properties") or {}
    pairs = []
    names = [n for n in props if n in data] + [n for n in data if n not in props]
    for name in names:
        prop = props.get(name) or {}
        label = prop.get("title") or (RETURN_REASON_LABEL if name == RETURN_REASON else name)
        if returned is not None and name == returned[0] and data[name] == returned[1]:
            pairs.append((label, RETURNED_LABEL))
        else:
            pairs.append((label, _display(prop, data[name], _ui(ui_schema, name))))
    return pairs


def _display(prop: dict, value: Any, ui: dict | None = None) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    options = dict(_options(prop, ui or {}))
    if options and _text(value) in options:
        return options[_text(value)]
    if isinstance(value, list):
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        return "；".join("，".join(f"{label}：{text}" for label, text in readable(items, v)) if isinstance(v, dict)
                        else _display(items, v) for v in value)
    if isinstance(value, dict):
        return "，".join(f"{label}：{text}" for label, text in readable(prop, value))
    return _text(value)
