"""Numbers in the pages' query strings and forms: what is not a number the databases hold counts as not
given (the default), never as an error from the database."""

from __future__ import annotations

from flask import request

from hall.fields import database_int
from hall.processes.schemas import MAX_PAGE


def int_arg(name: str, default: int | None = None) -> int | None:
    return request.args.get(name, default, type=database_int)


def page_arg() -> int:
    """The `page` of a list page: 1 when absent or not a page number, at most MAX_PAGE."""
    return min(max(1, int_arg("page") or 1), MAX_PAGE)
