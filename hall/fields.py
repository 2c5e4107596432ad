"""marshmallow's fields for the hall's API schemas, with integers bounded to what the databases hold.

A schema module imports `from hall import fields` instead of marshmallow's: the same names, except that an
Integer beyond the databases' integer columns (PostgreSQL's `integer`, 32 bits: an id, a page number, a
version in a request) is a 422 naming the field, not a 500 from the database.
"""

from __future__ import annotations

from marshmallow import fields as _fields
from marshmallow.fields import *  # noqa: F403 - every other field as marshmallow has it

LARGEST = 2**31 - 1


def fits(number: int) -> bool:
    """Whether the databases' integer columns hold *number*."""
    return -LARGEST <= number <= LARGEST


class Integer(_fields.Integer):
    default_error_messages = {"too_large": f"数值超出范围（绝对值最大 {LARGEST}）"}

    def _validated(self, value) -> int:
        number = super()._validated(value)
        if number is not None and not fits(number):
            raise self.make_error("too_large")
        return number


Int = Integer


def database_int(text: str) -> int:
    """`type=` for werkzeug's `args.get` / `form.get` on the pages: an integer the databases hold; anything
    else raises ValueError, so the call gives its default as for a value that is not a number at all."""
    number = int(text)
    if not fits(number):
        raise ValueError(f"{number} is beyond the databases' integers")
    return number
