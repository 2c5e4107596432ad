"""Drawing a JSON Schema as form fields and reading posted values back as typed data."""

from werkzeug.datastructures import MultiDict

from hall.web.forms import build_fields, parse_form

SCHEMA = {
    "type": "object",
    "required": ["days"],
    "properties": {
        "days": {"type": "number", "title": "天数"},
        "count": {"type": "integer", "title": "人数"},
        "urgent": {"type": "boolean", "title": "加急"},
        "level": {"type": "integer", "title": "级别", "enum": [1, 2, 3, 4, 5]},
        "kind": {"type": "string", "title": "类型", "enum": ["a", "b"]},
        "start": {"type": "string", "format": "date", "title": "开始"},
        "note": {"type": "string", "title": "说明", "maxLength": 1000},
        "items": {"type": "array", "title": "明细", "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}}}},
    },
}


def test_widgets_follow_the_schema():
    """Enums of up to four options are radios, longer ones selects; dates, numbers and long text get their inputs."""
    fields = {f.name: f for f in build_fields(SCHEMA, {}, {"days": 2.5}, {"days": ["错"]})}
    assert fields["days"].widget == "number" and fields["days"].inputmode == "decimal"
    assert fields["days"].required and fields["days"].value == "2.5" and fields["days"].errors == ["错"]
    assert fields["count"].inputmode == "numeric"
    assert fields["urgent"].widget == "radio" and fields["urgent"].options == [("true", "是"), ("false", "否")]
    assert fields["level"].widget == "select" and fields["kind"].widget == "radio"
    assert fields["start"].widget == "date" and fields["note"].widget == "textarea"
    assert fields["items"].widget == "rows" and len(fields["items"].rows) == 1


def test_posted_values_are_converted_by_type():
    """Numbers, integers, booleans and non-string enums arrive typed; empty inputs are left out; rows are read."""
    form = MultiDict({"days": "1.5", "count": "3", "urgent": "false", "level": "4", "kind": "b", "start": "",
                      "note": "  ", "items.0.name": "纸", "items.0.qty": "2", "items.1.name": "", "items.1.qty": ""})
    assert parse_form(SCHEMA, None, form) == {"days": 1.5, "count": 3, "urgent": False, "level": 4, "kind": "b",
                                             "items": [{"name": "纸", "qty": 2}]}


def test_unconvertible_number_is_passed_on_for_validation():
    """A number field holding text is passed on as text, so the schema check names the field."""
    assert parse_form(SCHEMA, None, MultiDict({"days": "两天"}))["days"] == "两天"
