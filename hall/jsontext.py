"""JSON text in and out of the hall: orjson wherever it gives exactly what the json module gives, the json
module where it would not.

orjson reads and writes JSON several times faster (an instance's state, ~6 KB, is read and written by every
task submit; every API answer is JSON). Where the two differ, the json module's result is the right one:
- an integer beyond 64 bits: orjson reads it as a float (silently inexact) and refuses to write it;
- NaN and ±Infinity, which JSON does not have: orjson refuses to read them and writes them as null.

So `loads` takes orjson only for text with no run of 19 or more digits (every integer orjson could misread
has one; a long digit run inside a string just takes the slower path) and falls back to json for whatever
orjson refuses. `dumps` falls back to json for whatever orjson refuses to write; NaN in data a script made
is written as null (json would write NaN, which PostgreSQL refuses). Request bodies are read by
`loads_request`, which refuses NaN and Infinity: the json module would take them, and the value would then
be refused by PostgreSQL or become null. A person gets a 400, and nothing is stored.
"""

from __future__ import annotations

import json

import orjson
from flask.json.provider import DefaultJSONProvider

# Every ASCII digit becomes "0", every other byte a space: a digit run of 19 is then a plain substring.
_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def loads(text: str | bytes | bytearray | memoryview):
    """Exactly what `json.loads` returns, mostly through orjson."""
    data = _bytes(text)
    value = _read_fast(data)
    return json.loads(data) if value is _NOT_READ else value


def _bytes(text) -> bytes:
    return text.encode() if isinstance(text, str) else bytes(text)


def _read_fast(data: bytes):
    """orjson's reading of *data*, or _NOT_READ where json could read it otherwise (a long number) or where
    orjson refuses it (NaN, Infinity, a lone surrogate escape, or not JSON): json decides those."""
    if _LONG_NUMBER not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return _NOT_READ


_NOT_READ, _TOO_DEEP = object(), object()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


# Deepest nesting a request body may have: no form needs more, and deeper data would exhaust the recursion
# of the steps after the parse (the engine copies task data recursively).
MAX_REQUEST_DEPTH = 64


def loads_request(text: str | bytes):
    """A request body's JSON: as `loads`, but NaN and ±Infinity are refused, and so are nesting deeper than
    MAX_REQUEST_DEPTH and a text with a NUL character or a lone surrogate (json.JSONDecodeError, which the API
    answers with a 400)."""
    data = _bytes(text)
    value = _read_fast(data)
    if value is _NOT_READ:
        try:
            value = json.loads(data, parse_constant=_refuse_constant)
        except json.JSONDecodeError:
            raise
        except ValueError as err:  # NaN or Infinity
            raise json.JSONDecodeError(str(err), data.decode(errors="replace"), 0) from None
        except RecursionError:
            value = _TOO_DEEP
    # Only a body with more openers than the limit can be nested deeper than it: most are not walked.
    if value is _TOO_DEEP or (data.count(b"[") + data.count(b"{") > MAX_REQUEST_DEPTH
                              and _depth(value) > MAX_REQUEST_DEPTH):
        raise json.JSONDecodeError(f"nested deeper than {MAX_REQUEST_DEPTH} levels", "(request body)", 0)
    # No database stores a NUL character or a lone surrogate in text; both can only come as \\u escapes.
    if b"\\u" in data and _bad_text(value):
        raise json.JSONDecodeError("a NUL character or a lone surrogate in a text", "(request body)", 0)
    return value


def _bad_text(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode()
            except UnicodeEncodeError:  # a lone surrogate
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if deepest > MAX_REQUEST_DEPTH:
            break
        stack.extend((child, level + 1) for child in item)
    return deepest


def dumps(value, *, sort_keys: bool = False, default=None) -> str:
    """Compact JSON text (non-ASCII characters as they are), as `json.dumps(separators=(",", ":"),
    ensure_ascii=False)` writes it; NaN and Infinity become null."""
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    if default is not None:
        # Dates and dataclasses go to *default* too, as the json module would send them.
        option |= orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    try:
        return orjson.dumps(value, default=default, option=option).decode()
    except TypeError:  # an integer beyond 64 bits, or a type orjson does not know: json decides
        return json.dumps(value, default=default, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON (API answers, request bodies, the session cookie) through `dumps` and `loads_request`.
    Answers keep Flask's sorted keys and its `default` (dates as HTTP dates, UUIDs, dataclasses); non-ASCII
    characters are written as they are, not as \\u escapes. A call with the json module's own options
    (an indent in debug mode) goes to the json module."""

    def dumps(self, obj, **kwargs) -> str:
        if kwargs and kwargs != _COMPACT:
            return super().dumps(obj, **kwargs)
        return dumps(obj, sort_keys=self.sort_keys, default=self.default)

    def loads(self, s, **kwargs):
        if kwargs:
            return super().loads(s, **kwargs)
        return loads_request(s)


_COMPACT = {"separators": (",", ":")}


# What the json module's refusals mean, for a person who typed the text (its messages are English).
_REASONS = (
    ("Expecting value", "此处缺少值"),
    ("Expecting ',' delimiter", "缺少逗号"),
    ("Expecting ':' delimiter", "缺少冒号"),
    ("Expecting property name enclosed in double quotes", "属性名须用英文双引号括起，末项后不能有逗号"),
    ("Unterminated string", "字符串缺少结尾的英文双引号"),
    ("Invalid control character", "字符串中不能直接换行或含控制字符"),
    ("Invalid \\escape", "无效的转义符"),
    ("Extra data", "JSON 结束后还有多余内容"),
)


def problem(err: ValueError) -> str:
    """Where JSON text a person wrote is broken and why, in Chinese: 第 3 行第 7 列：缺少逗号."""
    if isinstance(err, json.JSONDecodeError):
        if err.pos >= len(err.doc.rstrip()) and not err.msg.startswith("Unterminated string"):
            return f"第 {err.lineno} 行第 {err.colno} 列：内容不完整，缺少结尾的括号"
        reason = next((text for start, text in _REASONS if err.msg.startswith(start)), "格式不正确")
        return f"第 {err.lineno} 行第 {err.colno} 列：{reason}"
    return "不是有效的 JSON 文本（须为 UTF-8 编码）"
