"""hall/jsontext.py: orjson where it gives what the json module gives, json where it would not."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask.json.provider import DefaultJSONProvider

from hall import jsontext

SAMPLES = [
    '{"a": 1, "b": [1.5, -0.0, 1e300, true, null], "c": "待办 ✓", "d": {"e": 18446744073709551615}}',
    '[9223372036854775807, -9223372036854775808, 1234567890123456789]',
    '{"card": "6222021234567890123", "n": 12345678901234567890123}',  # a 19-digit string, a huge integer
    '[123456789012345678901234567890, -98765432109876543210987]',
    '"\\ud800"',  # a lone surrogate escape: json takes it, orjson refuses it
    '{"x": 1E2, "y": 0.1, "z": 2.5e-8}',
]


@pytest.mark.parametrize("text", SAMPLES)
def test_loads_gives_what_json_gives(text):
    expected = json.loads(text)
    for given in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        got = jsontext.loads(given)
        assert got == expected and type(got) is type(expected)
        assert json.dumps(got) == json.dumps(expected)  # integers stay integers, exactly


def test_loads_takes_what_json_takes_and_refuses_what_it_refuses():
    assert json.dumps(jsontext.loads('{"v": NaN}')) == '{"v": NaN}'  # stored data read back as json would
    with pytest.raises(json.JSONDecodeError):
        jsontext.loads("{not json")


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_request_bodies_refuse_nan_and_infinity(text):
    with pytest.raises(json.JSONDecodeError):
        jsontext.loads_request(text)


def test_request_bodies_keep_big_integers():
    assert jsontext.loads_request(b'{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}


@dataclasses.dataclass
class _Point:
    x: int


def test_dumps_writes_the_value_json_writes():
    value = {"b": [1, 2.5, None, True], "a": "待办", 3: "int key", "big": 2**70}
    assert json.loads(jsontext.dumps(value)) == json.loads(json.dumps(value))
    assert jsontext.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'


def test_the_flask_provider_keeps_flasks_types(app):
    when = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    value = {"when": when, "day": date(2026, 11, 27), "id": uuid.UUID(int=7), "p": _Point(1), "d": Decimal("1.10")}
    assert json.loads(app.json.dumps(value)) == json.loads(DefaultJSONProvider(app).dumps(value))
    assert app.json.dumps({"名": "张伟"}) == '{"名":"张伟"}'
    with pytest.raises(json.JSONDecodeError):
        app.json.loads('{"v": NaN}')


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1,}', "第 1 行第 9 列：属性名须用英文双引号括起，末项后不能有逗号"),
    ('{\n  "a" 1}', "第 2 行第 7 列：缺少冒号"),
    ('[1 2]', "第 1 行第 4 列：缺少逗号"),
    ('{"a": 1} x', "第 1 行第 10 列：JSON 结束后还有多余内容"),
    ('{"type": "object", "properties": {', "第 1 行第 35 列：内容不完整，缺少结尾的括号"),
    ('{"a": "x', "第 1 行第 7 列：字符串缺少结尾的英文双引号"),
])
def test_problem_says_where_and_why_in_chinese(text, expected):
    """A person's broken JSON is described by line, column and a Chinese reason, not json's English message."""
    with pytest.raises(ValueError) as caught:
        json.loads(text)
    assert jsontext.problem(caught.value) == expected
